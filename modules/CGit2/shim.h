#ifndef TEND_CGIT2_SHIM_H
#define TEND_CGIT2_SHIM_H
#include <git2.h>
#endif
