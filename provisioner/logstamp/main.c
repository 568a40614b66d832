/*
 * provisioner-logstamp: stdin to stdout, each line with its time in front.
 * The process driver runs it between a tenant service and its log file.
 */

#include "stamp.h"

int
main(void)
{
    stamp_lines(0, 1);
    return 0;
}
