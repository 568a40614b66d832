#define _POSIX_C_SOURCE 200809L

/* `provisioner check`: the health checks of check.c, for a person or cron */

#include "check_cmd.h"
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
check_cmd(struct prov *p, int argc, char **argv)
{
    struct check  c[CHECKS_MAX];
    json_t       *all, *one;
    char         *text;
    int           i, n, worst, as_json = 0, store = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--store") == 0) {
            store = 1;
        } else {
            fprintf(stderr, "provisioner check: %s: unknown option "
                    "(--json, --store)\n", argv[i]);
            return 64;
        }
    }

    (void) checks_run(p, c, &n);
    if (store && checks_store(p, c, n) != 0) {
        fprintf(stderr, "provisioner check: --store: the registry refused "
                "the results (above)\n");
    }

    worst = CHECK_OK;
    for (i = 0; i < n; i++) {
        if (c[i].status > worst) {
            worst = c[i].status;
        }
    }

    if (as_json) {
        all = json_array();
        for (i = 0; all && i < n; i++) {
            one = json_pack("{s:s, s:s, s:f, s:f, s:s}", "name", c[i].name,
                            "status", check_status_name(c[i].status),
                            "warning", c[i].warning,
                            "critical", c[i].critical,
                            "detail", c[i].detail);
            if (one && c[i].has_value) {
                json_object_set_new(one, "value", json_real(c[i].value));
            }
            json_array_append_new(all, one);
        }
        text = all ? json_dumps(json_pack("{s:s, s:o}", "status",
                                          check_status_name(worst), "checks",
                                          all),
                                JSON_INDENT(2) | JSON_REAL_PRECISION(6))
                   : NULL;
        if (text == NULL) {
            fprintf(stderr, "provisioner check: out of memory\n");
            return CHECK_CRITICAL;
        }
        printf("%s\n", text);
        free(text);
    } else {
        for (i = 0; i < n; i++) {
            printf("%-8s  %-16s  %s\n", check_status_name(c[i].status),
                   c[i].name, c[i].detail);
        }
    }
    return worst;
}
