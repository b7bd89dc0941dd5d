/*
 * The self-contained artifact's front door: a static executable (built with musl-gcc -static, so it
 * needs nothing from the host, not even a libc) that runs the PyInstaller bundle with the bundle's
 * own dynamic loader and libraries:
 *
 *     DIR/lib/LOADER --inhibit-cache --library-path DIR/lib/_internal --argv0 DIR/lib/NAME DIR/lib/NAME ARGS...
 *
 * DIR is the directory of this executable (symlinks followed, so `ln -s DIR/docker-credential-ecr-login
 * /usr/local/bin/` works), found from /proc/self/exe or, where /proc is not mounted (a bare chroot, a
 * scratch container without /proc), from argv[0] and PATH. The name the user called it by (for
 * `ecr-credential-provider`, the kubelet mode) is passed in DOCKER_CREDENTIAL_ECR_ARGV0, which the
 * bundle's entry point reads and removes: PyInstaller's bootloader needs argv[0] to find its archive.
 * Nothing here changes LD_LIBRARY_PATH: programs the helper runs (credential_process, another
 * credential helper) start with the environment the user gave it.
 *
 * LOADER is the bundle's own ld.so, patched by packaging/selfcontain so that it never looks in the
 * host's library directories, /etc/ld.so.cache or /etc/ld.so.preload.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LOADER
#error "build with -DLOADER='\"ld-linux-x86-64.so.2\"' (the bundled loader's file name)"
#endif
#define PROGRAM "docker-credential-ecr-login"
#define ARGV0_VARIABLE "DOCKER_CREDENTIAL_ECR_ARGV0"

static void die(const char *what, const char *detail) {
    fprintf(stderr, "docker-credential-ecr-login: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(127);
}

/* The executable's real path: /proc/self/exe, else argv[0] (with a slash) or the first PATH match. */
static int self_path(const char *argv0, char *out) {
    ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
    if (n > 0) {
        out[n] = '\0';
        return 0;
    }
    if (argv0 == NULL || argv0[0] == '\0') return -1;
    if (strchr(argv0, '/')) return realpath(argv0, out) ? 0 : -1;
    const char *path = getenv("PATH");
    if (path == NULL) return -1;
    char candidate[PATH_MAX];
    for (const char *p = path;; p = strchr(p, ':') + 1) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* Relative PATH entries are never used to find a program (they may be planted). */
        if (len > 0 && p[0] == '/' && len + 1 + strlen(argv0) < sizeof candidate) {
            snprintf(candidate, sizeof candidate, "%.*s/%s", (int)len, p, argv0);
            if (access(candidate, X_OK) == 0 && realpath(candidate, out)) return 0;
        }
        if (end == NULL) break;
    }
    return -1;
}

int main(int argc, char **argv) {
    char self[PATH_MAX], loader[PATH_MAX], libdir[PATH_MAX], program[PATH_MAX];
    (void)argc;
    if (self_path(argv[0], self) != 0) die("cannot find its own directory", strerror(errno));
    char *slash = strrchr(self, '/');
    if (slash == NULL) die("cannot find its own directory", self);
    *slash = '\0';
    if (snprintf(loader, sizeof loader, "%s/lib/%s", self, LOADER) >= (int)sizeof loader ||
        snprintf(libdir, sizeof libdir, "%s/lib/_internal", self) >= (int)sizeof libdir ||
        snprintf(program, sizeof program, "%s/lib/%s", self, PROGRAM) >= (int)sizeof program)
        die("path too long", self);
    if (setenv(ARGV0_VARIABLE, argv[0] ? argv[0] : PROGRAM, 1) != 0) die("setenv", strerror(errno));
    /* PyInstaller's bootloader (one-dir, Linux) otherwise sets LD_LIBRARY_PATH and execs itself a second
     * time on every run so that the loader finds _internal/: --library-path has done that already.
     * -1 is its "parent that needed a restart" level: it carries on as the main process at once. The
     * level counts only with _PYI_ARCHIVE_FILE naming this same archive (else the bootloader resets it). */
    if (setenv("_PYI_ARCHIVE_FILE", program, 1) != 0 || setenv("_PYI_PARENT_PROCESS_LEVEL", "-1", 1) != 0)
        die("setenv", strerror(errno));

    int n = 0;
    while (argv[n]) n++;
    char **args = calloc((size_t)n + 8, sizeof *args);
    if (args == NULL) die("out of memory", NULL);
    int i = 0;
    args[i++] = loader;
    args[i++] = "--inhibit-cache";
    args[i++] = "--library-path";
    args[i++] = libdir;
    args[i++] = "--argv0";
    args[i++] = program;
    args[i++] = program;
    for (int k = 1; k < n; k++) args[i++] = argv[k];
    args[i] = NULL;
    execv(loader, args);
    die("cannot run the bundled loader", strerror(errno));
    return 127;
}
