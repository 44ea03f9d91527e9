// Runs a command and reports its own peak RSS and CPU time, exactly. Used by bench/common.
//
// usage: spawn_rss PROG [ARGS...]
//
// PROG's stdout goes to /dev/null (stdin and stderr are inherited); when it has exited this
// prints one line on stdout:
//
//   maxrss_kib=N utime_us=N stime_us=N status=N
//
// (status as wait4 gives it). Why a helper: at exec, Linux carries the peak RSS of the address
// space the new program replaces into its ru_maxrss. A bench that starts a command itself hands
// it its own address space (posix_spawn/vfork: the bench's peak RSS) or a copy of it (fork: the
// bench's anonymous memory), so a big bench makes every child look big. This helper is small, and
// it forks, so the command's ru_maxrss is its own to within this helper's few hundred KiB.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: spawn_rss PROG [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn_rss: fork");
        return 1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0) {
            perror("spawn_rss: /dev/null");
            _exit(127);
        }
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("spawn_rss: wait4");
            return 1;
        }
    }
    printf("maxrss_kib=%ld utime_us=%lld stime_us=%lld status=%d\n", ru.ru_maxrss,
           (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
           (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, status);
    return 0;
}
