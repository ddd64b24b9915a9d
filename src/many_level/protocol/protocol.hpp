// The many-level wire protocol in one include: message structs, their codec
// and the length-prefixed framing. Sessions (host, guest) build on these.
#pragma once

#include "messages.hpp"
#include "codec.hpp"
#include "framing.hpp"
