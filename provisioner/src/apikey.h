#ifndef PROV_APIKEY_H
#define PROV_APIKEY_H

#include <libpq-fe.h>

int apikey_main(PGconn *conn, int argc, char **argv);

#endif
