package manifest

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// maxLinkHops bounds symlink chains, as the kernel does.
const maxLinkHops = 40

// checkLinks checks that nothing lives under a symlink and that every
// symlink, followed through the other symlinks of the release the way the
// kernel will follow them, stays inside the release: a lexical check alone
// would let "d -> ." and "s -> d/d/d/../../.." climb out.
func (m *Manifest) checkLinks() error {
	links := map[string]string{}
	for _, f := range m.Files {
		if f.Mode.Type() == fs.ModeSymlink {
			links[f.Path] = f.Link
		}
	}
	for _, f := range m.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if _, ok := links[dir]; ok {
				return fmt.Errorf("manifest: %q lies under the symlink %q: %w", f.Path, dir, errkind.InvalidArgument)
			}
		}
		if f.Mode.Type() == fs.ModeSymlink {
			hops := 0
			if _, err := resolve(links, split(path.Dir(f.Path)), f.Link, &hops); err != nil {
				return fmt.Errorf("manifest: symlink %q -> %q: %w", f.Path, f.Link, err)
			}
		}
	}
	return nil
}

func split(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// resolve follows target from the directory whose components are dir, through
// the release's symlinks, and returns where it ends. Leaving the release root
// is an error.
func resolve(links map[string]string, dir []string, target string, hops *int) ([]string, error) {
	if path.IsAbs(target) {
		return nil, fmt.Errorf("absolute target: %w", errkind.InvalidArgument)
	}
	cur := append([]string(nil), dir...)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, fmt.Errorf("leads outside the release: %w", errkind.InvalidArgument)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, c)
		link, ok := links[strings.Join(cur, "/")]
		if !ok {
			continue
		}
		if *hops++; *hops > maxLinkHops {
			return nil, fmt.Errorf("too many levels of symlinks: %w", errkind.InvalidArgument)
		}
		var err error
		if cur, err = resolve(links, cur[:len(cur)-1], link, hops); err != nil {
			return nil, err
		}
	}
	return cur, nil
}
