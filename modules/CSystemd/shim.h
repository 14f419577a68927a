#ifndef TEND_CSYSTEMD_SHIM_H
#define TEND_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-daemon.h>
#include <sys/uio.h>
#endif
