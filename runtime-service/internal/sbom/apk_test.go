package sbom

import (
	"reflect"
	"strings"
	"testing"
)

// alpineInstalled is an apk installed database in the real format (abridged from Alpine 3.19).
const alpineInstalled = `C:Q1Fk3J5lkUe5AjUp2hbFP0ux8MF+E=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1701968734
c:3b5d2ba9dba3f4bd8ab1f07e1c5a8a9a9b1e8d39
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1gW0G9Rbx9n4eYLfZCVBJkfhQtS8=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1pcWEHCwlLmd2XgHxdGbTa0pxNRQ=
P:busybox
V:1.36.1-r15
A:x86_64
S:509874
I:924672
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1701946423
c:e8b7a4c2a4c8c0bb1c2f2e3d4c5b6a7980112233
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r15 cmd:sh=1.36.1-r15
r:busybox-initscripts
F:bin
R:busybox
a:0:0:755
Z:Q1WUwBY0eOGgzgVxTZxJBZPyQUicI=
F:etc
R:securetty
Z:Q1mB95Hq2NUTZ599RDiSsj9w5FrOU=
R:udhcpd.conf
Z:Q1EgLFjj67ou3eMqp4m3r2ZjnQ7QU=
F:etc/logrotate.d
R:acpid
Z:Q1TylyCINVmnS+A/Tead4vZhE7Bks=
F:usr
F:usr/share

C:Q1vbJJu7C8D9d5Mqd0Jk1h8ZYw2x0=
P:ssl_client
V:1.36.1-r15
A:x86_64
S:4889
I:14336
T:EXternal ssl_client for busybox wget
o:busybox
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3 so:libssl.so.3
F:usr
F:usr/bin
R:ssl_client
a:0:0:755
Z:Q1CGJM7HGl3sAXbKN1VTZ8bGo0q/c=
`

func TestParseAPKInstalled(t *testing.T) {
	musl := apkRecord{Name: "musl", Version: "1.2.4_git20230717-r4", Arch: "x86_64", Origin: "musl",
		Files: []string{"/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"}}
	busybox := apkRecord{Name: "busybox", Version: "1.36.1-r15", Arch: "x86_64", Origin: "busybox",
		Files: []string{"/bin/busybox", "/etc/securetty", "/etc/udhcpd.conf", "/etc/logrotate.d/acpid"}}
	sslClient := apkRecord{Name: "ssl_client", Version: "1.36.1-r15", Arch: "x86_64", Origin: "busybox",
		Files: []string{"/usr/bin/ssl_client"}}
	tests := []struct {
		name                string
		in                  string
		maxRecords, maxFile int
		want                []apkRecord
		wantTruncated       bool
		wantErr             string
	}{
		{name: "alpine", in: alpineInstalled, maxRecords: 10, maxFile: 10, want: []apkRecord{musl, busybox, sslClient}},
		{name: "max records", in: alpineInstalled, maxRecords: 1, maxFile: 10, want: []apkRecord{musl}, wantTruncated: true},
		{name: "max files", in: alpineInstalled, maxRecords: 1, maxFile: 1, wantTruncated: true, want: []apkRecord{{
			Name: "musl", Version: "1.2.4_git20230717-r4", Arch: "x86_64", Origin: "musl",
			Files: []string{"/lib/ld-musl-x86_64.so.1"}, FilesTruncated: true}}},
		{name: "files before any F are at the root", in: "P:a\nV:1\nR:x\n", maxRecords: 10, maxFile: 10,
			want: []apkRecord{{Name: "a", Version: "1", Files: []string{"/x"}}}},
		{name: "several blank lines, no final newline", in: "P:a\nV:1\n\n\n\nP:b\nV:2", maxRecords: 10, maxFile: 10,
			want: []apkRecord{{Name: "a", Version: "1"}, {Name: "b", Version: "2"}}},
		{name: "a record without P is no package", in: "V:1\nF:x\nR:y\n", maxRecords: 10, maxFile: 10},
		{name: "malformed keeps what came before", in: "P:a\nV:1\n\nP:b\nnot a key line\n", maxRecords: 10, maxFile: 10,
			want: []apkRecord{{Name: "a", Version: "1"}}, wantErr: "line 5"},
		{name: "empty", in: "", maxRecords: 10, maxFile: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated, err := parseAPKInstalled(strings.NewReader(tt.in), tt.maxRecords, tt.maxFile)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("records:\n got %+v\nwant %+v", got, tt.want)
			}
			if truncated != tt.wantTruncated {
				t.Errorf("truncated = %v, want %v", truncated, tt.wantTruncated)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzAPKInstalled: the apk parser never panics, keeps its bounds, and returns absolute clean file paths.
func FuzzAPKInstalled(f *testing.F) {
	f.Add(alpineInstalled, 2, 3)
	f.Add("P:a\nF:../../..\nR:../etc/passwd\n", 1, 1)
	f.Add("P:\nV:\n\nx\n", 1, 1)
	f.Add("F:a\nR:b\nP:c\n\n\n", 5, 0)
	f.Fuzz(func(t *testing.T, in string, maxRecords, maxFiles int) {
		maxRecords, maxFiles = maxRecords%32+32, maxFiles%32+32 // bounds in [1, 63]
		recs, _, _ := parseAPKInstalled(strings.NewReader(in), maxRecords, maxFiles)
		if len(recs) > maxRecords {
			t.Fatalf("%d records, bound %d", len(recs), maxRecords)
		}
		for _, r := range recs {
			if r.Name == "" || len(r.Files) > maxFiles {
				t.Fatalf("record %+v (files bound %d)", r, maxFiles)
			}
			for _, p := range r.Files {
				if p != absPath(p) || strings.Contains(p, "/../") {
					t.Fatalf("file path %q is not absolute and clean", p)
				}
			}
		}
	})
}
