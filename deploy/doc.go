// Package deploy holds the installation artifacts' tests: the Helm charts under helm/ (rendered with the helm
// CLI, checked, applied with server-side dry-run and installed on a real kube-apiserver, their RBAC probed
// with `kubectl auth can-i`), the collector configs they ship (validated with the built distribution) and the
// sensor's capability set (the built collector run with exactly those capabilities on the real kernel), and the
// controller run as the installed chart describes it against the runtime service. The Dockerfiles are under
// docker/. docs/install.md is the user's side of all of it.
package deploy
