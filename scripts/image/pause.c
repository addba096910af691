/*
 * The pod sandbox's process for the single-node cluster (image
 * registry.k8s.io/pause:3.10, built by scripts/image/build-images.sh): it holds the
 * pod's namespaces open and does nothing else. As PID 1 of the pod it also reaps
 * any orphan that ends up as its child, and it exits on SIGINT or SIGTERM so the
 * runtime can stop it without a SIGKILL.
 *
 * Built static (gcc -static), so the image needs nothing but this file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
  (void)signo;
  _exit(0);
}

static void reap(int signo) {
  (void)signo;
  int saved = errno;
  /* Several children may end before one SIGCHLD is handled: reap them all. */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int on(int signo, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fprintf(stderr, "pause: takes no arguments\n");
    return 1;
  }
  if (getpid() != 1) {
    fprintf(stderr, "pause: warning: not PID 1, so orphans are reaped by another process\n");
  }
  if (on(SIGINT, stop, 0) || on(SIGTERM, stop, 0) || on(SIGCHLD, reap, SA_NOCLDSTOP | SA_RESTART)) {
    perror("pause: sigaction");
    return 2;
  }
  for (;;) {
    pause();
  }
}
