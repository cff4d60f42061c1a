/* The umbrella header of the Kurer module (module.modulemap): every public header of libkurer,
 * through the two an application includes. kurer.h brings error.h, annot.h, level.h and
 * sizes.h; ctest mobile_objc_module fails if a public header (tests/check_symbols.sh --headers)
 * is not reached from here. */
#ifndef KURER_UMBRELLA_H
#define KURER_UMBRELLA_H

#include "kurer/kurer.h"
#include "kurer/mobile.h"

#endif
