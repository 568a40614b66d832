// A tenant's Medusa: everything it differs by comes from its environment
// (its own database, secrets and port). The admin dashboard is built once
// per runtime install (runtimes/medusa/build.js) and linked in as
// public/admin; it calls the server it was loaded from.
const { defineConfig } = require("@medusajs/framework/utils")

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    http: {
      storeCors: process.env.STORE_CORS || "",
      adminCors: process.env.ADMIN_CORS || "",
      authCors: process.env.AUTH_CORS || "",
      jwtSecret: process.env.JWT_SECRET,
      cookieSecret: process.env.COOKIE_SECRET,
    },
  },
  admin: { disable: false, path: "/app", backendUrl: "/" },
})
