// docker-archive images: a `docker save` tarball (legacy or docker >= 25's OCI-in-tar),
// read in place.
#pragma once

#include "images/image.h"

namespace cowbench::img {

// Reads manifest.json and the config from the tarball without unpacking it; the layers are
// read from their members when opened. kInvalidInput for an archive of more than one image, a
// config that does not match its name's digest, or a malformed manifest.
Image open_docker_archive(const ImageRef& ref);

}  // namespace cowbench::img
