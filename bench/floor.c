/* The floor for a no-op plan: for each of N files, lstat() it, open it, read it and compare it
 * with the content it should have. This is the least any tool must do to know N files are right.
 * Usage: floor ROOT N DIRS */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: floor ROOT N DIRS\n"); return 64; }
    const char *root = argv[1];
    long n = atol(argv[2]), dirs = atol(argv[3]);
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
