#!/bin/sh
# The layers of common/ are enforced by include paths (common/CMakeLists.txt):
# a header of a layer above is not found. A relative include ("../net/net.hpp")
# would walk around that, so none is allowed where the layers are used.
cd "$(dirname "$0")/../.." || exit 2
found=$(grep -rn --include='*.cpp' --include='*.hpp' '#include "\.\./' common [0-9][0-9]_* tools tests/unit tests/fuzz)
if [ -n "$found" ]; then
    echo "relative includes walk around the layers (name the header by its layer: \"net/net.hpp\"):"
    echo "$found"
    exit 1
fi
echo "no relative includes"
