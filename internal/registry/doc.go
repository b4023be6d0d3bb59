// Package registry asks OCI and Docker registries what a tag points at and whether a repository holds a
// manifest digest, without ever letting a slow registry stall its caller.
//
// It is built on go-containerregistry's remote package (OCI and Docker media types; anonymous, basic and
// bearer-token auth) and adds what a pipeline that asks about every running container needs:
//
//   - Answers are cached: a tag for TTL, an error (401, 404, unreachable, ...) for the shorter NegativeTTL, and
//     the platform list of an index, which is addressed by its digest, without expiry. TTLs are absolute: a hot
//     entry still goes back to the registry once per TTL.
//   - One request is in flight per tag or digest (singleflight); callers that give up (their context ends) leave
//     it running, and its answer lands in the cache for the next caller.
//   - Every request to a registry passes a per-registry concurrency limit and rate limit; a 429 blocks the
//     registry for as long as its Retry-After says. NewTransport is that transport on its own, for the runtime
//     service's correlation and SBOM fetches, which wait a Retry-After out instead of failing at once.
//   - Tags resolve with a manifest HEAD (Docker-Content-Digest); a GET is made only when the HEAD lacks the
//     headers, and counted.
//   - A background refresh re-resolves the tags in use before their entries expire, so a moved tag is noticed
//     within one TTL even when nobody asks.
//   - Credentials come from per-registry settings, docker config.json files, Kubernetes pull-secret files
//     (.dockerconfigjson, .dockercfg, or the Secret object as JSON) and Artifactory access tokens; TLS is
//     per registry (a CA file; skipping verification or plain HTTP only when configured).
//
// The image integrity processor uses it to judge running digests; the runtime service reuses its transport,
// credentials files and TLS settings for correlation.
package registry
