#ifndef PROV_RUN_H
#define PROV_RUN_H

#include "conf.h"

int run_daemon(struct conf *conf, const char *conf_path);

#endif
