package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// wantFile is what one path in the image's merged layers must be.
type wantFile struct {
	mode     fs.FileMode // including fs.ModeDir / fs.ModeSticky
	uid, gid int
	content  string // regular files; "" is not checked
	contains string // regular files; substring
}

const (
	certA = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
	certB = "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----" // no newline
)

func TestImagebuild(t *testing.T) {
	src := t.TempDir()
	app := writeFile(t, src, "app", "#!app binary", 0o700)
	pause := writeFile(t, src, "pause", "pause binary", 0o755)
	data := writeFile(t, src, "data", "some data", 0o644)
	// A fake Debian ca-certificates tree: concatenated in path order, .crt only.
	cas := filepath.Join(src, "ca")
	writeFile(t, filepath.Join(cas, "mozilla"), "b.crt", certB, 0o644)
	writeFile(t, filepath.Join(cas, "mozilla"), "a.crt", certA, 0o644)
	writeFile(t, filepath.Join(cas, "mozilla"), "README", "not a cert", 0o644)

	staticEnv := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	}
	tests := []struct {
		name       string
		args       []string
		entrypoint []string
		user       string
		workdir    string
		env        []string
		labels     map[string]string
		layers     int
		files      map[string]wantFile
		absent     []string
	}{{
		name: "static app like the Dockerfile",
		args: []string{
			"--ref", "dev.local/authgate/authgate-proxy:e2e", "--base", "static", "--ca-certs", cas,
			"--add", app + ":/usr/local/bin/app:0755", "--entrypoint", "/usr/local/bin/app",
			"--user", "65532:65532", "--env", "FOO=bar", "--env", "PATH=/bin",
			"--label", "org.opencontainers.image.title=authgate-proxy",
		},
		entrypoint: []string{"/usr/local/bin/app"},
		user:       "65532:65532",
		workdir:    "/home/nonroot",
		env:        []string{"PATH=/bin", staticEnv[1], "FOO=bar"},
		labels:     map[string]string{"org.opencontainers.image.title": "authgate-proxy"},
		layers:     2,
		files: map[string]wantFile{
			"usr/local/bin/app":                 {mode: 0o755, content: "#!app binary"},
			"usr/local/bin":                     {mode: fs.ModeDir | 0o755},
			"tmp":                               {mode: fs.ModeDir | fs.ModeSticky | 0o777},
			"home/nonroot":                      {mode: fs.ModeDir | 0o700, uid: 65532, gid: 65532},
			"root":                              {mode: fs.ModeDir | 0o700},
			"etc/passwd":                        {mode: 0o644, contains: "\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
			"etc/group":                         {mode: 0o644, contains: "\nnonroot:x:65532:\n"},
			"etc/nsswitch.conf":                 {mode: 0o644, contains: "\nhosts:          files dns\n"},
			"etc/os-release":                    {mode: 0o644, contains: "local reproduction"},
			"etc/ssl/certs/ca-certificates.crt": {mode: 0o644, content: certA + certB + "\n"},
		},
	}, {
		name: "scratch pause",
		args: []string{
			"--ref", "dev.local/pause:e2e", "--base", "scratch",
			"--add", pause + ":/pause", "--entrypoint", "/pause",
		},
		entrypoint: []string{"/pause"},
		layers:     1,
		files:      map[string]wantFile{"pause": {mode: 0o755, content: "pause binary"}},
		absent:     []string{"etc/passwd", "tmp"},
	}, {
		name: "modes, owners and workdir as given",
		args: []string{
			"--ref", "dev.local/x:1", "--workdir", "/data", "--user", "1000",
			"--add", data + ":/data/secret:0600:1000:2000", "--add", data + ":/data/setgid:2755",
		},
		user:    "1000",
		workdir: "/data",
		layers:  1,
		files: map[string]wantFile{
			"data":        {mode: fs.ModeDir | 0o755},
			"data/secret": {mode: 0o600, uid: 1000, gid: 2000, content: "some data"},
			"data/setgid": {mode: fs.ModeSetgid | 0o755, content: "some data"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out1, out2 := filepath.Join(dir, "1.tar"), filepath.Join(dir, "2.tar")
			var stdout bytes.Buffer
			if err := run(append(tc.args, "--out", out1), &stdout); err != nil {
				t.Fatal(err)
			}
			if err := run(append(tc.args, "--out", out2), io.Discard); err != nil {
				t.Fatal(err)
			}
			ref := tc.args[1]
			img := readImage(t, out1, ref)
			img2 := readImage(t, out2, ref)
			if d1, d2 := digest(t, img.Digest), digest(t, img2.Digest); d1 != d2 {
				t.Errorf("two builds of the same inputs: digests %s and %s", d1, d2)
			}
			id1, id2 := digest(t, img.ConfigName), digest(t, img2.ConfigName)
			if id1 != id2 {
				t.Errorf("two builds of the same inputs: image IDs %s and %s", id1, id2)
			}
			if want := ref + " " + out1 + " " + id1.String() + "\n"; stdout.String() != want {
				t.Errorf("stdout %q, want %q", stdout.String(), want)
			}

			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != "amd64" {
				t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
			}
			c := cf.Config
			for _, chk := range []struct {
				what      string
				got, want any
			}{
				{"entrypoint", c.Entrypoint, tc.entrypoint},
				{"user", c.User, tc.user},
				{"workdir", c.WorkingDir, tc.workdir},
				{"env", c.Env, tc.env},
				{"labels", c.Labels, tc.labels},
			} {
				if !reflect.DeepEqual(chk.got, chk.want) {
					t.Errorf("%s %#v, want %#v", chk.what, chk.got, chk.want)
				}
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != tc.layers {
				t.Errorf("%d layers, want %d", len(layers), tc.layers)
			}

			files := readFiles(t, layers)
			for p, w := range tc.files {
				got, ok := files[p]
				if !ok {
					t.Errorf("%s missing", p)
					continue
				}
				if mode := got.hdr.FileInfo().Mode(); mode != w.mode {
					t.Errorf("%s mode %v, want %v", p, mode, w.mode)
				}
				if got.hdr.Uid != w.uid || got.hdr.Gid != w.gid {
					t.Errorf("%s owner %d:%d, want %d:%d", p, got.hdr.Uid, got.hdr.Gid, w.uid, w.gid)
				}
				if !got.hdr.ModTime.Equal(epoch) {
					t.Errorf("%s mtime %v, want %v", p, got.hdr.ModTime, epoch)
				}
				if w.content != "" && got.data != w.content {
					t.Errorf("%s content %q, want %q", p, got.data, w.content)
				}
				if !strings.Contains(got.data, w.contains) {
					t.Errorf("%s content %q does not contain %q", p, got.data, w.contains)
				}
			}
			for _, p := range tc.absent {
				if _, ok := files[p]; ok {
					t.Errorf("%s present, want absent", p)
				}
			}
		})
	}
}

func TestImagebuildErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.tar")
	for _, args := range [][]string{
		{"--out", out},
		{"--ref", "dev.local/x:1", "--out", out, "--add", "nocolon"},
		{"--ref", "dev.local/x:1", "--out", out, "--add", "src:relative/dst"},
		{"--ref", "dev.local/x:1", "--out", out, "--add", "src:/dst:999"},
		{"--ref", "dev.local/x:1", "--out", out, "--add", "src:/dst:0644:u"},
		{"--ref", "dev.local/x:1", "--out", out, "--base", "alpine"},
		{"--ref", "dev.local/x:1", "--out", out, "--env", "NOEQUALS"},
		{"--ref", "dev.local/x:1", "--out", out, "--add", "/nonexistent:/x"},
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%q: %s written", args, out)
		}
	}
}

func writeFile(t *testing.T, dir, base, content string, mode fs.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, base)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func readImage(t *testing.T, path, ref string) v1.Image {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, f func() (v1.Hash, error)) v1.Hash {
	t.Helper()
	d, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type tarFile struct {
	hdr  *tar.Header
	data string
}

// readFiles merges the layers' entries by path (later layers win; the test
// images have no whiteouts).
func readFiles(t *testing.T, layers []v1.Layer) map[string]tarFile {
	t.Helper()
	files := map[string]tarFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = tarFile{hdr: h, data: string(b)}
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return files
}
