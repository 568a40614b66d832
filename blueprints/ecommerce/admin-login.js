// `medusa exec ./admin-login.js`: the tenant admin's login, from the
// environment (ADMIN_EMAIL, ADMIN_PASSWORD; never argv, which other users
// can read): made the first time, its password replaced after (the old one
// no longer signs in).
const { Modules } = require("@medusajs/framework/utils")

module.exports.default = async function ({ container }) {
  const email = process.env.ADMIN_EMAIL
  const password = process.env.ADMIN_PASSWORD
  if (!email || !password) {
    throw new Error("ADMIN_EMAIL and ADMIN_PASSWORD must be set")
  }
  const users = container.resolve(Modules.USER)
  const auth = container.resolve(Modules.AUTH)
  const [user] = await users.listUsers({ email })
  if (user) {
    const r = await auth.updateProvider("emailpass", { entity_id: email, password })
    if (!r.success) {
      throw new Error(r.error || "the password was not changed")
    }
    console.log("admin password reset")
    return
  }
  const made = await users.createUsers([{ email }])
  const { authIdentity, error } = await auth.register("emailpass", { body: { email, password } })
  if (error) {
    throw new Error(error)
  }
  await auth.updateAuthIdentities({ id: authIdentity.id, app_metadata: { user_id: made[0].id } })
  console.log("admin created")
}
