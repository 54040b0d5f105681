// A protocol-layer file reaching up into the net layer: this must not compile.
// tests/CMakeLists.txt builds it as part of the protocol layer and expects the
// compiler to say it cannot find the header (the layers of common/ hold).
#include "net/net.hpp"
