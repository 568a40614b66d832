// Run by auto/runtimes once per install, in the runtime's directory: the
// admin dashboard is static files that no tenant differs by (it talks to
// the server it was loaded from: backendUrl "/"), so it is built here
// once, into admin/, and every store links it as its public/admin.
const { build } = require("@medusajs/admin-bundler")

const out = process.argv[2]
if (!out) {
  console.error("usage: node build.js OUTDIR")
  process.exit(2)
}

build({ path: "/app", backendUrl: "/", outDir: out, sources: [], plugins: [] })
  .then(() => console.log(`admin dashboard built into ${out}`))
  .catch((e) => {
    console.error(e)
    process.exit(1)
  })
