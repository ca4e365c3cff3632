package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is every entry's mtime and the image's creation time, so that the
// same inputs always give the same digest.
var epoch = time.Unix(0, 0).UTC()

const (
	baseScratch = "scratch"
	baseStatic  = "static"
)

type options struct {
	Ref, Out   string
	Files      []file
	Entrypoint string
	User       string
	Env        []string
	Workdir    string
	Labels     map[string]string
	Base       string
	CACerts    string
}

// file is one --add: a host file placed at Dst in the image.
type file struct {
	Src, Dst string
	Mode     fs.FileMode // 0: the source's permission bits
	UID, GID int
}

// entry is one tar entry of a layer.
type entry struct {
	Name     string // absolute path in the image
	Mode     fs.FileMode
	UID, GID int
	Data     []byte // regular files
	Dir      bool
}

// parseAdd parses SRC:DST[:MODE[:UID:GID]].
func parseAdd(s string) (file, error) {
	p := strings.Split(s, ":")
	if (len(p) != 2 && len(p) != 3 && len(p) != 5) || p[0] == "" || !path.IsAbs(p[1]) {
		return file{}, fmt.Errorf("--add %q: want SRC:DST[:MODE[:UID:GID]] with an absolute DST", s)
	}
	f := file{Src: p[0], Dst: path.Clean(p[1])}
	if len(p) >= 3 {
		m, err := strconv.ParseUint(p[2], 8, 32)
		if err != nil || m > 0o7777 {
			return file{}, fmt.Errorf("--add %q: MODE %q is not an octal mode", s, p[2])
		}
		f.Mode = octalMode(uint32(m))
	}
	if len(p) == 5 {
		var err1, err2 error
		f.UID, err1 = strconv.Atoi(p[3])
		f.GID, err2 = strconv.Atoi(p[4])
		if err1 != nil || err2 != nil || f.UID < 0 || f.GID < 0 {
			return file{}, fmt.Errorf("--add %q: UID:GID must be numbers", s)
		}
	}
	return f, nil
}

// octalMode turns Unix mode bits (e.g. 01777) into an fs.FileMode.
func octalMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func parseKV(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want K=V", kv)
		}
		m[k] = v
	}
	return m, nil
}

// setEnv sets K=V in env, replacing an earlier value of K.
func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// filesLayer reads the --add files into entries, with root-owned 0755
// parent directories as COPY creates them.
func filesLayer(files []file) ([]entry, error) {
	var es []entry
	for _, f := range files {
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			st, err := os.Stat(f.Src)
			if err != nil {
				return nil, err
			}
			mode = st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		}
		for d := path.Dir(f.Dst); d != "/"; d = path.Dir(d) {
			es = append(es, entry{Name: d, Mode: 0o755, Dir: true})
		}
		es = append(es, entry{Name: f.Dst, Mode: mode, UID: f.UID, GID: f.GID, Data: data})
	}
	return es, nil
}

// layer writes entries as an uncompressed tar: sorted by path, directories
// deduplicated (the first one wins), fixed mtimes, numeric owners only.
func layer(es []entry) (v1.Layer, error) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Name] {
			if e.Dir {
				continue
			}
			return nil, fmt.Errorf("%s is added twice", e.Name)
		}
		seen[e.Name] = true
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.Name, "/"),
			Mode:    tarMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: epoch,
			Format:  tar.FormatUSTAR,
		}
		if e.Dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// tarMode is fs.FileMode's permission and special bits as Unix mode bits.
func tarMode(m fs.FileMode) int64 {
	u := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// buildImage assembles the image: the base's layer (if any), one layer with
// the --add files, and the config.
func buildImage(o options) (v1.Image, error) {
	var cfg v1.Config
	var adds []mutate.Addendum
	switch o.Base {
	case baseScratch:
	case baseStatic:
		es, err := staticBase(o.CACerts)
		if err != nil {
			return nil, err
		}
		l, err := layer(es)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: "imagebuild: --base static (distroless static-debian12:nonroot reproduction)",
		}})
		cfg = staticConfig()
	default:
		return nil, fmt.Errorf("--base %q: want static or scratch", o.Base)
	}
	if len(o.Files) > 0 {
		es, err := filesLayer(o.Files)
		if err != nil {
			return nil, err
		}
		l, err := layer(es)
		if err != nil {
			return nil, err
		}
		var dsts []string
		for _, f := range o.Files {
			dsts = append(dsts, f.Dst)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: "imagebuild: add " + strings.Join(dsts, " "),
		}})
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	if o.Entrypoint != "" {
		cfg.Entrypoint = []string{o.Entrypoint}
	}
	if o.User != "" {
		cfg.User = o.User
	}
	if o.Workdir != "" {
		cfg.WorkingDir = o.Workdir
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want K=V", kv)
		}
		cfg.Env = setEnv(cfg.Env, kv)
	}
	cfg.Labels = o.Labels
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// writeImage builds the image and writes it as a docker-archive tar tagged
// o.Ref (via a temporary file, so a failed build leaves no partial tar).
// It returns the image ID, the config's digest: the digest containerd and
// the kubelet report after `ctr images import` (containerd writes its own
// manifest for a docker-archive, so the manifest digest does not survive).
func writeImage(o options) (v1.Hash, error) {
	tag, err := name.NewTag(o.Ref)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := buildImage(o)
	if err != nil {
		return v1.Hash{}, err
	}
	tmp := o.Out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		_ = os.Remove(tmp)
		return v1.Hash{}, err
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return v1.Hash{}, err
	}
	return img.ConfigName()
}
