// Package imageref parses and normalizes container image references the way
// container runtimes do (containerd and docker, both via the grammar of
// github.com/distribution/reference), so that two spellings of the same image
// compare equal:
//
//   - The registry is implied when the first path component does not look like
//     a host (it contains no '.' or ':', is not "localhost" and has no
//     uppercase letter): "nginx" and "org/app" live on Docker Hub.
//
//   - Docker Hub's aliases index.docker.io and registry-1.docker.io are folded
//     into "docker.io", and a single-component Docker Hub repository gets the
//     "library/" prefix: "nginx", "docker.io/nginx" and
//     "index.docker.io/library/nginx" all become "docker.io/library/nginx".
//
//   - The registry host is lowercased (DNS names and IPv6 literals are
//     case-insensitive). The one exception is a dot-less, port-less host other
//     than localhost, such as "MyReg/app": it is recognizable as a host only
//     by its uppercase letters, so it keeps its spelling, because lowercasing
//     it would turn it into the Docker Hub repository "myreg/app".
//
//   - The hex part of a digest is lowercased, as registries report it in
//     Docker-Content-Digest; the algorithm is kept as written.
//
//   - A reference with neither a tag nor a digest gets the tag "latest", as
//     containerd's ParseDockerRef and a pod's status show it: "nginx" is
//     "docker.io/library/nginx:latest". A digest alone gets no tag, and a tag
//     beside a digest is kept (ParseDockerRef drops it; the digest decides
//     either way, and the pod spec's words stay readable).
//
// Nothing else is rewritten: the repository path must already be lowercase
// and tags are case-sensitive. Leading or trailing whitespace is an error
// rather than being trimmed.
//
// A bare image id ("sha256:<64 hex>" or just 64 hex digits, as in
// containerStatuses[].imageID or `docker images --no-trunc`) is accepted and
// yields a [Reference] with only Digest set; see [Reference.IsImageID].
//
// The parser is a hand-written scanner meant to run once per log record: it
// does not use regular expressions, and on success it allocates only when it
// must build a new string (the "library/" prefix, or lowercasing). The
// fields of a parsed Reference may therefore share memory with the input.
//
// Errors are of type *[Error], whose Reason says what is wrong; byte offsets
// in a Reason count from the start of the input.
package imageref
