// Fuzz target: a guest's stream fed whatever a host (or anything posing as
// one) sends back, while the guest has requests waiting: gets, a put and an
// iterator (whose first read is sent when it is made). The replies may
// answer them, answer nothing, answer twice, or be garbage. Nothing may crash
// the guest, hang it or make it read out of bounds; every request completes
// (with a value or an error) once the stream ends and the guest closes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "many_level/guest/guest.hpp"

using namespace many_level;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GuestOptions options;
  options.max_frame_length = 1 << 16;
  Guest guest(options);
  auto session = guest.connect();
  guest.get_async("a", {}, [](std::optional<Error>, Guest::Value) {});
  guest.get_async("b", {}, [](std::optional<Error>, Guest::Value) {});
  guest.put_async("k", "v", {}, [](std::optional<Error>) {});
  std::unique_ptr<Iterator> iterator;
  try {
    iterator = guest.iterator();
  } catch (const Error&) {
  }
  const char* bytes = reinterpret_cast<const char*>(data);
  size_t left = size;
  std::string requests;
  while (left > 0 && session->failed().empty()) {
    const size_t chunk = std::min<size_t>(left, 64);
    session->receive(bytes, chunk);
    bytes += chunk;
    left -= chunk;
    session->output().take(requests);
    requests.clear();
  }
  session->end();
  guest.close();  // fails what is still waiting; the iterator goes after it
  iterator.reset();
  return 0;
}
