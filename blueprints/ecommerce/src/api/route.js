// The store's front page at "/": its published products, read from its
// own store API on this server with its own publishable key, in the theme
// the tenant chose (STORE_THEME). Product titles are the tenant's data:
// escaped for HTML. At admin.{tenant} it sends the owner to the dashboard.
const { ContainerRegistrationKeys } = require("@medusajs/framework/utils")

const THEMES = {
  default: { bg: "#ffffff", fg: "#1f2933", accent: "#3b82f6" },
  fashion: { bg: "#fdf2f8", fg: "#3f1d38", accent: "#db2777" },
  electronics: { bg: "#0f172a", fg: "#e2e8f0", accent: "#22d3ee" },
  minimal: { bg: "#fafafa", fg: "#111111", accent: "#111111" },
}

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c])

exports.GET = async (req, res) => {
  // admin.{tenant}: the dashboard (the edge says which role was asked for)
  if (req.get("x-tenant-role") === "admin") {
    return res.redirect(302, "/app")
  }
  const query = req.scope.resolve(ContainerRegistrationKeys.QUERY)
  const { data: keys } = await query.graph({
    entity: "api_key",
    fields: ["token", "type", "revoked_at"],
  })
  const key = keys.find((k) => k.type === "publishable" && !k.revoked_at)
  const name = process.env.STORE_NAME || "Store"
  const themeName = THEMES[process.env.STORE_THEME] ? process.env.STORE_THEME : "default"
  const theme = THEMES[themeName]

  let products = []
  if (key) {
    const r = await fetch(
      `http://127.0.0.1:${process.env.PORT}/store/products?fields=title,handle&limit=100`,
      { headers: { "x-publishable-api-key": key.token } })
    if (r.ok) {
      products = (await r.json()).products
    }
  }

  const items = products.length
    ? products.map((p) => `<li class="product">${escape(p.title)}</li>`).join("\n")
    : `<li class="empty">No products yet.</li>`

  res.setHeader("content-type", "text/html; charset=utf-8")
  res.send(`<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(name)}</title>
<style>body{background:${theme.bg};color:${theme.fg};font-family:sans-serif}
h1{color:${theme.accent}}</style></head>
<body class="theme-${themeName}">
<h1>${escape(name)}</h1>
<ul class="products">
${items}
</ul>
</body></html>
`)
}
