/* bgloop/bgloop.h - umbrella header: include this to get the whole API. */
#ifndef BGLOOP_BGLOOP_H
#define BGLOOP_BGLOOP_H

#include "bgloop/common.h"
#include "bgloop/loop.h"
#include "bgloop/lag.h"
#include "bgloop/task.h"
#include "bgloop/resource.h"
#include "bgloop/service.h"
#include "bgloop/notify.h"

#endif /* BGLOOP_BGLOOP_H */
