#ifndef PROV_ACTOR_H
#define PROV_ACTOR_H

/* "cli:$USER" (or "cli:uid<N>"), in a buffer of its own */
const char *cli_actor(void);

#endif
