/* The floors tend is measured against.
 *   floor check ROOT N DIRS   for each of N files, lstat() it, open it, read it and compare it with
 *                             the content it should have: the least any tool must do to know N
 *                             files are right (the floor of a no-op plan).
 *   floor write ROOT N DIRS   make the DIRS folders, then write each file safely: temporary file,
 *                             write, fsync, rename; one fsync per folder at the end (the floor of
 *                             an apply that never leaves a file half written).
 *   floor write-nosync ROOT N DIRS   the same without any fsync, as CFEngine writes: the least any
 *                             tool must do to put N files in place, durable or not.
 *   floor write-batch ROOT N DIRS    durable as tend's stretches are, on one thread: every
 *                             temporary written, one syncfs, every rename, one syncfs (the floor of
 *                             that way of making N new files durable).
 *   floor lstat ROOT N DIRS   lstat() each of the N files and nothing else: the floor of a check
 *                             that trusts what it recorded while the file's status is unchanged. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The DIRS folders the files go in, under ROOT/srv/data. */
static int make_folders(const char *root, long dirs) {
    char path[4096];
    snprintf(path, sizeof path, "%s/srv", root); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/srv/data", root); mkdir(path, 0755);
    for (long d = 0; d < dirs; d++) {
        snprintf(path, sizeof path, "%s/srv/data/d%03ld", root, d);
        if (mkdir(path, 0755) != 0) { perror(path); return 1; }
    }
    return 0;
}

static int write_all(const char *root, long n, long dirs, int durable) {
    char path[4096], temporary[4200], content[256];
    if (make_folders(root, dirs) != 0) return 1;
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/srv/data/d%03ld/f%06ld.conf", root, i % dirs, i);
        snprintf(temporary, sizeof temporary, "%s.tmp", path);
        int len = snprintf(content, sizeof content, "# generated file %ld\nkey = value-%ld\n", i, i);
        int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || fchmod(fd, 0644) != 0 || write(fd, content, len) != len || (durable && fsync(fd) != 0)) { perror(temporary); return 1; }
        close(fd);
        if (rename(temporary, path) != 0) { perror(path); return 1; }
    }
    for (long d = 0; durable && d < dirs; d++) {
        snprintf(path, sizeof path, "%s/srv/data/d%03ld", root, d);
        int fd = open(path, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || fsync(fd) != 0) { perror(path); return 1; }
        close(fd);
    }
    return 0;
}

static int write_batch(const char *root, long n, long dirs) {
    char path[4096], temporary[4200], content[256];
    if (make_folders(root, dirs) != 0) return 1;
    for (long i = 0; i < n; i++) {
        snprintf(temporary, sizeof temporary, "%s/srv/data/d%03ld/f%06ld.conf.tmp", root, i % dirs, i);
        int len = snprintf(content, sizeof content, "# generated file %ld\nkey = value-%ld\n", i, i);
        int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || fchmod(fd, 0644) != 0 || write(fd, content, len) != len) { perror(temporary); return 1; }
        close(fd);
    }
    int top = open(root, O_RDONLY | O_DIRECTORY);
    if (top < 0 || syncfs(top) != 0) { perror(root); return 1; }
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/srv/data/d%03ld/f%06ld.conf", root, i % dirs, i);
        snprintf(temporary, sizeof temporary, "%s.tmp", path);
        if (rename(temporary, path) != 0) { perror(path); return 1; }
    }
    if (syncfs(top) != 0) { perror(root); return 1; }
    close(top);
    return 0;
}

static int lstat_all(const char *root, long n, long dirs) {
    char path[4096];
    long missing = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/srv/data/d%03ld/f%06ld.conf", root, i % dirs, i);
        struct stat st;
        if (lstat(path, &st) != 0) missing++;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    /* Its own time, without the process's start: what an agent that is already running would pay. */
    printf("%ld of %ld files missing; %ld us\n", missing, n,
           (long)((end.tv_sec - start.tv_sec) * 1000000 + (end.tv_nsec - start.tv_nsec) / 1000));
    return missing ? 2 : 0;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: floor check|write|write-nosync|write-batch|lstat ROOT N DIRS\n"); return 64; }
    const char *root = argv[2];
    long n = atol(argv[3]), dirs = atol(argv[4]);
    if (strcmp(argv[1], "write") == 0) return write_all(root, n, dirs, 1);
    if (strcmp(argv[1], "write-nosync") == 0) return write_all(root, n, dirs, 0);
    if (strcmp(argv[1], "write-batch") == 0) return write_batch(root, n, dirs);
    if (strcmp(argv[1], "lstat") == 0) return lstat_all(root, n, dirs);
    char path[4096], expected[256], buffer[65536];
    long differ = 0;
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/srv/data/d%03ld/f%06ld.conf", root, i % dirs, i);
        int len = snprintf(expected, sizeof expected, "# generated file %ld\nkey = value-%ld\n", i, i);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) { differ++; continue; }
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) { differ++; continue; }
        ssize_t got = read(fd, buffer, sizeof buffer);
        close(fd);
        if (got != len || memcmp(buffer, expected, len) != 0 || (st.st_mode & 07777) != 0644) differ++;
    }
    printf("%ld of %ld files differ\n", differ, n);
    return differ ? 2 : 0;
}
