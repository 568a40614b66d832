
/*
 * Unit tests for blueprint templates (provisioner/src/template.c): the
 * placeholders, and a tenant-supplied value escaped for where it is
 * written (HTML, JSON, one config line, raw); prints TAP for prove.
 *
 * sources: provisioner/src/template.c provisioner/src/log.c
 * libs: -ljansson
 */


#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int  ntests;


static void
is(char *got, const char *want, const char *what)
{
    int  good = got != NULL && strcmp(got, want) == 0;

    ntests++;
    printf("%s %d - %s\n", good ? "ok" : "not ok", ntests, what);
    if (!good) {
        printf("#   got: %s\n#   want: %s\n", got ? got : "(NULL)", want);
    }
    free(got);
}


static void
fails(char *got, const char *err, const char *want_err, const char *what)
{
    int  good = got == NULL && strstr(err, want_err) != NULL;

    ntests++;
    printf("%s %d - %s\n", good ? "ok" : "not ok", ntests, what);
    if (!good) {
        printf("#   got: %s, err: %s\n", got ? got : "(NULL)", err);
    }
    free(got);
}


static int
count_secret(const char *name, void *data)
{
    int  *n = data;

    (*n)++;
    return strcmp(name, "app_key") == 0 ? 0 : -1;
}


int
main(void)
{
    char         err[256];
    int          n;
    struct tctx  c;

    memset(&c, 0, sizeof(c));
    c.tenant = "shop1";
    c.domain = "shop1.example.com";
    c.dir = "/var/lib/t/shop1/home";
    c.port = 20001;
    c.bind = "127.0.0.1";
    c.ports = json_pack("{s:i, s:i}", "web", 20001, "admin", 20002);
    c.secrets = json_pack("{s:s}", "app_key", "k3y");
    c.display_name = "<script>alert(\"x\")</script> & 'co'\n"
                     "listen 0.0.0.0:80;";

    printf("1..14\n");

    is(template_render("{{tenant}} on {{bind}}:{{port}} in {{dir}}", &c,
                       err, sizeof(err)),
       "shop1 on 127.0.0.1:20001 in /var/lib/t/shop1/home",
       "placeholders are replaced");
    is(template_render("{{port:admin}}", &c, err, sizeof(err)), "20002",
       "another service's port");
    is(template_render("{{secret:app_key}}", &c, err, sizeof(err)), "k3y",
       "a secret");
    is(template_render("no placeholders { } {x}", &c, err, sizeof(err)),
       "no placeholders { } {x}", "text without placeholders is kept");

    is(template_render_as("<h1>{{display_name}}</h1>", &c, TPL_HTML, err,
                          sizeof(err)),
       "<h1>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
       "&#39;co&#39;\nlisten 0.0.0.0:80;</h1>",
       "HTML: a tenant's name cannot open a tag or leave an attribute");
    is(template_render_as("{\"name\": \"{{display_name}}\"}", &c, TPL_JSON,
                          err, sizeof(err)),
       "{\"name\": \"<script>alert(\\\"x\\\")</script> & 'co'\\u000a"
       "listen 0.0.0.0:80;\"}",
       "JSON: quotes and the line break are escaped inside the string");
    fails(template_render_as("server_name {{display_name}};", &c, TPL_LINE,
                             err, sizeof(err)),
          err, "line", "a config line refuses a value with a line break");
    is(template_render_as("server_name {{domain}};", &c, TPL_LINE, err,
                          sizeof(err)),
       "server_name shop1.example.com;", "a config line takes a plain value");
    is(template_render_as("{{display_name}}", &c, TPL_RAW, err, sizeof(err)),
       "<script>alert(\"x\")</script> & 'co'\nlisten 0.0.0.0:80;",
       "raw (argv, environment) keeps the value as it is");

    fails(template_render("{{nope}}", &c, err, sizeof(err)), err, "nope",
          "an unknown placeholder is an error naming it");
    fails(template_render("{{db_url}}", &c, err, sizeof(err)), err,
          "db_url", "a placeholder without a value here is an error");

    n = 0;
    ntests++;
    printf("%s %d - template_secrets finds each {{secret:NAME}}\n",
           template_secrets("{{secret:app_key}} {{tenant}} {{secret:app_key}}",
                            count_secret, &n) == 0 && n == 2 ? "ok" : "not ok",
           ntests);

    ntests++;
    printf("%s %d - file names choose the escaping\n",
           template_escape_for("site/index.html") == TPL_HTML
           && template_escape_for("conf/app.json") == TPL_JSON
           && template_escape_for("nginx.conf") == TPL_LINE
           ? "ok" : "not ok", ntests);

    ntests++;
    printf("%s %d - .svg and .xml are HTML-escaped too\n",
           template_escape_for("logo.svg") == TPL_HTML
           && template_escape_for("feed.xml") == TPL_HTML ? "ok" : "not ok",
           ntests);

    json_decref(c.ports);
    json_decref(c.secrets);

    return 0;
}
