#ifndef PROV_CLOCK_H
#define PROV_CLOCK_H

/* seconds on the monotonic clock: deadlines immune to clock changes */
double clock_now(void);
/* a short blocking pause: the provisioner's, never nginx's */
void   clock_pause_ms(long ms);

#endif
