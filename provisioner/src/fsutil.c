#define _XOPEN_SOURCE 700

#include "fsutil.h"
#include "logline.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

/* creates base/rel and every directory on the way */
int
mkdirs(const char *base, const char *rel, mode_t mode)
{
    char  p[2048], *s;
    int   n;

    n = snprintf(p, sizeof(p), "%s%s%s", base, rel && *rel ? "/" : "",
                 rel ? rel : "");
    if (n < 0 || (size_t) n >= sizeof(p)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *s = '/';
        }
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

/*
 * Tenants' directories are made and removed all day. ext4 without a
 * journal skips inodes freed in the last minutes when it allocates one,
 * scanning past each of them in the parent's block group: with the
 * churn of many creates and deletes, that scan was over half the
 * provisioner's CPU in a burst of creates. Marked a hierarchy top
 * (chattr +T), a directory's subdirectories are spread over block groups
 * with free inodes (ext4's Orlov allocator), and each tenant's files
 * follow its directory there. Filesystems without the flag say so and
 * are left as they are. 1 if marked, 0 if not supported, -1 on error.
 */
int
mkdir_top(const char *dir, mode_t mode)
{
    int  fd, flags, rc;

    if (mkdirs(dir, NULL, mode) != 0) {
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    rc = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        rc = 1;
        if (!(flags & FS_TOPDIR_FL)) {
            flags |= FS_TOPDIR_FL;
            if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) {
                rc = (errno == EOPNOTSUPP || errno == ENOTTY
                      || errno == EINVAL) ? 0 : -1;
            }
        }
    } else if (errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL) {
        rc = -1;
    }
    if (close(fd) != 0) {
        rc = -1;
    }
    return rc;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(p);
}

int
rmtree(const char *dir)
{
    if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) {
        return -1;
    }
    return 0;
}

/* written to a temporary file and renamed: readers never see half of it */
int
write_file(const char *file, const char *data, size_t len, mode_t mode)
{
    char     tmp[2100];
    int      fd;
    ssize_t  n;

    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return -1;
    }
    n = write(fd, data, len);
    if (n < 0 || (size_t) n != len || fchmod(fd, mode) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, file) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

char *
read_file(const char *file, size_t max, size_t *len)
{
    FILE   *f;
    char   *buf;
    size_t  n;

    f = fopen(file, "rb");
    if (f == NULL) {
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, max, f);
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) {
        *len = n;
    }
    return buf;
}

int
tail_lines(const char *file, int lines, const char *service, json_t *out)
{
    FILE   *f;
    long    size, from;
    char   *buf, *p, *start;
    size_t  n;
    int     count = 0;

    f = fopen(file, "rb");
    if (f == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
        fclose(f);
        return -1;
    }
    /* enough for the lines asked for, within reason */
    from = size > 256 * 1024 ? size - 256 * 1024 : 0;
    buf = malloc((size_t) (size - from) + 1);
    if (buf == NULL || fseek(f, from, SEEK_SET) != 0) {
        free(buf);
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, (size_t) (size - from), f);
    fclose(f);
    buf[n] = '\0';

    /* walk back over the last lines */
    p = buf + n;
    if (p > buf && p[-1] == '\n') {
        p--;
    }
    while (p > buf && count < lines) {
        p--;
        if (*p == '\n') {
            count++;
            if (count == lines) {
                p++;
                break;
            }
        }
    }

    for (start = p; start < buf + n; start = p + 1) {
        p = memchr(start, '\n', (size_t) (buf + n - start));
        if (p == NULL) {
            p = buf + n;
        }
        json_array_append_new(out, logline_json(service, start,
                                                (size_t) (p - start)));
    }

    free(buf);
    return 0;
}

void
cap_file(const char *file, long cap)
{
    struct stat  st;
    char         old[2100];
    char        *buf;
    size_t       len;
    int          fd;

    if (stat(file, &st) != 0 || st.st_size <= cap) {
        return;
    }

    snprintf(old, sizeof(old), "%s.1", file);

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    len = (size_t) cap / 2;
    buf = malloc(len);
    if (buf && pread(fd, buf, len, st.st_size - (off_t) len) == (ssize_t) len)
    {
        if (write_file(old, buf, len, 0600) != 0) {
            log_warn("cannot write %s: %s", old, strerror(errno));
        }
    }
    free(buf);
    close(fd);

    if (truncate(file, 0) != 0) {
        log_warn("cannot truncate %s: %s", file, strerror(errno));
    }
}
