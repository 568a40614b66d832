/*
 * libFuzzer target: blueprint loading (provisioner/src/blueprint.c) and
 * template rendering (template.c): what a broken or hostile blueprint file
 * goes through before the provisioner uses it.
 */

#include "blueprint.h"
#include "template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
render_all(json_t *v, const struct tctx *c)
{
    const char *k;
    json_t     *e;
    size_t      i;
    char        err[256], *out;

    if (json_is_string(v)) {
        out = template_render(json_string_value(v), c, err, sizeof(err));
        free(out);
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, e) {
            render_all(e, c);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            render_all(e, c);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t       *root, *ports, *secrets;
    json_error_t  jerr;
    char          err[512];
    struct tctx   c;

    if (size > 65536) {
        return 0;
    }

    root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      &jerr);
    if (root == NULL) {
        return 0;
    }

    if (blueprint_validate(root, NULL, err, sizeof(err)) == NULL) {
        ports = json_pack("{s:i}", "web", 20000);
        secrets = json_pack("{s:s}", "app_key", "k");
        memset(&c, 0, sizeof(c));
        c.tenant = "acme";
        c.theme = "default";
        c.dir = "/tmp/acme";
        c.domain = "acme.localhost";
        c.display_name = "Acme";
        c.port = 20000;
        c.ports = ports;
        c.secrets = secrets;
        render_all(json_object_get(root, "services"), &c);
        render_all(json_object_get(root, "admin_login"), &c);
        json_decref(ports);
        json_decref(secrets);
    }

    json_decref(root);
    return 0;
}
