// Runs an event loop until a condition holds or a guard timer fires: tests wait
// on the loop's own timers, never on sleeps.
#pragma once

#include "common/event_loop.h"

namespace flatlink::testing {

template <class F>
void run_until(EventLoop& loop, F cond, uint32_t max_ms = 3000) {
  Timer guard(loop, [&loop] { loop.quit(); });
  Timer tick(loop, [&] {
    if (cond()) {
      loop.quit();
    } else {
      tick.start(1);
    }
  });
  tick.start(0);
  guard.start(max_ms);
  loop.run();
}

}  // namespace flatlink::testing
