// Package e2e holds sgerun's end-to-end tests: each test builds its own
// rehearsal lab (package lab) of real Grid Engine daemons and real OpenSSH
// servers in Linux namespaces, runs sgerun against it from the lab's
// controller namespace and checks the cluster from inside its hosts.
//
// The tests are skipped with -short. Otherwise they need root and the
// packages that .ci/install-deps installs, and they fail (not skip) when
// either is missing. Run them with
//
//	go test ./e2e -v -count=1
package e2e
