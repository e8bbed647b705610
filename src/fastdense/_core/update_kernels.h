/* Run-time dispatch of the optimizer update loops (see update_template.h). */
#ifndef FASTDENSE_UPDATE_KERNELS_H
#define FASTDENSE_UPDATE_KERNELS_H
#include <math.h>
#include <stddef.h>

#include "fd_isa.h"

#define T float
#define SUF f
#define SQRT sqrtf
#include "update_template.h"
#undef T
#undef SUF
#undef SQRT
#define T double
#define SUF d
#define SQRT sqrt
#include "update_template.h"
#undef T
#undef SUF
#undef SQRT

#endif
