#include "common/uv_loop.h"

#include <uv.h>

namespace flatlink {
namespace {

class UvLoop final : public ForeignLoop {
 public:
  UvLoop() { uv_loop_init(&loop_); }
  ~UvLoop() override { close(); }

  const char* name() const override { return "libuv"; }
  uint64_t lws_option() const override { return LWS_SERVER_OPTION_LIBUV; }
  void* native() override { return &loop_; }
  void run_once() override { uv_run(&loop_, UV_RUN_ONCE); }
  void drain() override {
    if (!closed_) uv_run(&loop_, UV_RUN_DEFAULT);
  }
  void close() override {
    if (closed_) return;
    drain();
    closed_ = true;
    uv_loop_close(&loop_);
  }

 private:
  uv_loop_t loop_{};
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<ForeignLoop> make_uv_loop() { return std::make_unique<UvLoop>(); }

}  // namespace flatlink
