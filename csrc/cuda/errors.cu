// Host side of the asynchronous value errors of the CUDA kernels (cuda_utils.cuh has the
// protocol). Per device: the record (a __device__ variable of this module, zero when loaded)
// and a pinned, mapped host flag, set up on the first call on that device (in relaxed capture
// mode, so a first call inside a CUDA graph capture works too).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "autosample/cuda_utils.cuh"

namespace autosample {
namespace cuda {
namespace {

__device__ DeviceErrorState g_error_state;

struct DeviceRecord {
  std::once_flag once;
  DeviceErrorState* state = nullptr;
  int* host_flag = nullptr;
};

std::vector<std::unique_ptr<DeviceRecord>>& records() {
  static std::vector<std::unique_ptr<DeviceRecord>> all = [] {
    std::vector<std::unique_ptr<DeviceRecord>> v;
    for (int d = 0; d < c10::cuda::device_count(); ++d) v.push_back(std::make_unique<DeviceRecord>());
    return v;
  }();
  return all;
}

std::atomic<int64_t> g_seq{1};

std::atomic<bool>& sync_mode() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("AUTOSAMPLE_SYNC_ERRORS");
    return env != nullptr && std::strcmp(env, "") != 0 && std::strcmp(env, "0") != 0;
  }()};
  return on;
}

DeviceRecord& record_for(int device) {
  auto& all = records();
  TORCH_CHECK(device >= 0 && device < static_cast<int>(all.size()), "autosample: CUDA device ",
              device, " is not one of the ", all.size(), " visible devices");
  DeviceRecord& r = *all[device];
  std::call_once(r.once, [&] {
    const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    const c10::cuda::CUDAStreamCaptureModeGuard relaxed(cudaStreamCaptureModeRelaxed);
    void* state = nullptr;
    C10_CUDA_CHECK(cudaGetSymbolAddress(&state, g_error_state));
    r.state = static_cast<DeviceErrorState*>(state);
    void* flag = nullptr;
    if (cudaHostAlloc(&flag, sizeof(int), cudaHostAllocMapped | cudaHostAllocPortable) ==
        cudaSuccess) {
      *static_cast<volatile int*>(flag) = 0;
      void* dev_flag = nullptr;
      if (cudaHostGetDevicePointer(&dev_flag, flag, 0) == cudaSuccess && dev_flag == flag) {
        r.host_flag = static_cast<int*>(flag);  // unified addressing: one pointer for both sides
      } else {
        cudaFreeHost(flag);
      }
    }
    (void)cudaGetLastError();  // a failed pinned allocation only disables the early check
  });
  return r;
}

bool flag_set(const DeviceRecord& r) {
  return r.host_flag != nullptr && *reinterpret_cast<volatile const int*>(r.host_flag) != 0;
}

// Waits for `device`, reads and clears its record; raises if it held an error.
void drain(int device, DeviceRecord& r, bool synchronise) {
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  if (synchronise) c10::cuda::device_synchronize();
  if (r.host_flag != nullptr && !flag_set(r)) return;  // clean: the kernels have all finished
  DeviceErrorState st;
  C10_CUDA_CHECK(cudaMemcpy(&st, r.state, sizeof st, cudaMemcpyDeviceToHost));
  if (st.code == 0) return;
  const DeviceErrorState zero{};
  C10_CUDA_CHECK(cudaMemcpy(r.state, &zero, sizeof zero, cudaMemcpyHostToDevice));
  if (r.host_flag != nullptr) *reinterpret_cast<volatile int*>(r.host_flag) = 0;
  TORCH_CHECK(false, format_value_error(static_cast<Op>(st.op), static_cast<Err>(st.code), st.v),
              " [reported asynchronously by a kernel on cuda:", device,
              "; raised at the next autosample call or check_errors(); set "
              "AUTOSAMPLE_SYNC_ERRORS=1 to raise it in the failing call]");
}

}  // namespace

ErrorSink begin_call(Op op, const at::Device& device) {
  TORCH_CHECK(device.is_cuda(), "autosample::", op_name(op), ": expected CUDA tensors, got ",
              device);
  const int index = device.index() >= 0 ? device.index() : c10::cuda::current_device();
  DeviceRecord& r = record_for(index);
  if (flag_set(r)) drain(index, r, /*synchronise=*/true);
  return ErrorSink{r.state, r.host_flag, g_seq.fetch_add(1, std::memory_order_relaxed), op};
}

void end_call(const ErrorSink& sink) {
  if (!sync_mode().load(std::memory_order_relaxed)) return;
  const int device = c10::cuda::current_device();
  c10::cuda::stream_synchronize(at::cuda::getCurrentCUDAStream());
  DeviceRecord& r = record_for(device);
  (void)sink;
  drain(device, r, /*synchronise=*/false);
}

void check_errors() {
  auto& all = records();
  for (int d = 0; d < static_cast<int>(all.size()); ++d) {
    if (all[d]->state == nullptr) continue;  // no call ever ran on this device
    drain(d, *all[d], /*synchronise=*/true);
  }
}

bool set_sync_errors(bool enabled) { return sync_mode().exchange(enabled); }

}  // namespace cuda
}  // namespace autosample
