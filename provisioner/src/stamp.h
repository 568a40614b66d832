#ifndef PROV_STAMP_H
#define PROV_STAMP_H

/* copies lines from in to out, each with its UTC time in front; until EOF */
void stamp_lines(int in, int out);

#endif
