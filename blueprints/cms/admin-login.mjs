// The CMS's admin, from ADMIN_EMAIL and ADMIN_PASSWORD in the environment
// (never argv, which others can read): made at create, its password reset
// by seed-admin, when every session it had ends too, so the old password
// and whatever it signed in are both gone. The template database has no
// users (bootstrap --skipAdminInit), so no two CMSs share one. Written to
// the tables as Directus's own `users passwd` does, with its own hashing:
// its user service would refuse a platform's test domains (.localhost) as
// email addresses, and the provisioner has checked the address already.
import { randomUUID } from "node:crypto"
import getDatabase from "@directus/api/database/index"
import { generateHash } from "@directus/api/utils/generate-hash"

const email = process.env.ADMIN_EMAIL
const password = process.env.ADMIN_PASSWORD
if (!email || !password) {
  console.error("admin-login: ADMIN_EMAIL and ADMIN_PASSWORD must be set")
  process.exit(2)
}

const knex = getDatabase()
try {
  const hash = await generateHash(password)
  await knex.transaction(async (trx) => {
    const user = await trx("directus_users").select("id")
      .whereRaw("LOWER(??) = ?", ["email", email.toLowerCase()]).first()
    if (user) {
      await trx("directus_users").update({ password: hash }).where({ id: user.id })
      await trx("directus_sessions").delete().where({ user: user.id })
      console.log("admin password reset")
      return
    }
    let role = (await trx("directus_roles").select("id")
      .where({ admin_access: true }).first())?.id
    if (!role) {
      role = randomUUID()
      await trx("directus_roles").insert({
        id: role, name: "Administrator", icon: "verified",
        description: "$t:admin_description", admin_access: true, app_access: true,
      })
    }
    await trx("directus_users").insert({
      id: randomUUID(), email, password: hash, role, status: "active",
      first_name: "Admin", last_name: "User",
    })
    console.log("admin created")
  })
} catch (e) {
  console.error("admin-login:", e)
  process.exitCode = 1
} finally {
  await knex.destroy()
}
