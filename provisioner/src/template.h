#ifndef PROV_TEMPLATE_H
#define PROV_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

/* what {{...}} placeholders stand for */
struct tctx {
    const char  *tenant;
    const char  *theme;
    const char  *dir;            /* the tenant's directory */
    const char  *domain;         /* {tenant}.{base_domain} */
    const char  *display_name;
    int          port;           /* this service's */
    const char  *bind;           /* the address services listen on */
    json_t      *ports;          /* service name -> port */
    const char  *db_url;
    const char  *db_host;
    const char  *db_port;
    const char  *db_name;
    const char  *db_user;
    const char  *db_password;
    json_t      *secrets;        /* name -> value */
    const char  *admin_email;
    const char  *admin_password_crypt;
    json_t      *runtimes;       /* installed npm runtimes: name -> dir */
};

/* how values are written into what the template makes */
enum tpl_escape {
    TPL_RAW,     /* argv, environment, paths: no text format around them */
    TPL_HTML,    /* HTML text and quoted attributes: & < > " ' */
    TPL_JSON,    /* inside a JSON string: " \ and control characters */
    TPL_LINE     /* one line of a config file: no line break allowed */
};

/* malloc'd rendering, or NULL with the reason in err */
char *template_render(const char *tpl, const struct tctx *c, char *err,
                      size_t errlen);
char *template_render_as(const char *tpl, const struct tctx *c,
                         enum tpl_escape esc, char *err, size_t errlen);

/* the escaping a file's name calls for: .html .htm .xml .svg, .json, or
 * one line per value for anything else */
enum tpl_escape template_escape_for(const char *file);

/* calls fn for each {{secret:NAME}} in tpl */
int template_secrets(const char *tpl, int (*fn)(const char *name, void *data),
                     void *data);

#endif
