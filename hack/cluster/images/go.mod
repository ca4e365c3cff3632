// Separate module: builds the images the single-node e2e cluster runs
// (hack/cluster/images.sh), without a Docker engine or a registry.
// Kept out of the main module so go-containerregistry does not leak into go.mod.
module github.com/authgate/authgate/hack/cluster/images

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
