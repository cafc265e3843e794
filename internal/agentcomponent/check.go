package agentcomponent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/elastic/go-ucfg/yaml"
)

// The shapes below are the part of Elastic Agent's component spec
// (pkg/component/spec.go, input_spec.go) that decides whether the agent
// loads a spec, unpacked with the library the agent uses (go-ucfg) and
// checked by the same rules; output-only specs and runtime preventions'
// conditions are not checked.

type Spec struct {
	Version int         `config:"version" validate:"required"`
	Inputs  []InputSpec `config:"inputs"`
}

func (s *Spec) Validate() error {
	if s.Version != 2 {
		return errors.New("only version 2 is allowed")
	}
	seen := map[string][]string{}
	for i, in := range s.Inputs {
		for _, p := range in.Platforms {
			if slices.Contains(seen[in.Name], p) {
				return fmt.Errorf("input %s at inputs.%d defines the same platform as a previous definition", in.Name, i)
			}
			seen[in.Name] = append(seen[in.Name], p)
		}
	}
	return nil
}

type InputSpec struct {
	Name        string         `config:"name" validate:"required"`
	Aliases     []string       `config:"aliases"`
	Description string         `config:"description" validate:"required"`
	Platforms   []string       `config:"platforms" validate:"required,min=1"`
	Outputs     []string       `config:"outputs"`
	Shippers    []string       `config:"shippers"`
	Command     map[string]any `config:"command"`
	Service     map[string]any `config:"service"`
}

// platforms are the agent's GlobalPlatforms (pkg/component/platforms.go).
var platforms = []string{"container/amd64", "container/arm64", "darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64", "windows/amd64"}

func (s *InputSpec) Validate() error {
	if s.Command == nil && s.Service == nil {
		return fmt.Errorf("input '%s' must define either command or service", s.Name)
	}
	for i, p := range s.Platforms {
		if !slices.Contains(platforms, p) {
			return fmt.Errorf("input '%s' defines an unknown platform '%s'", s.Name, p)
		}
		if slices.Contains(s.Platforms[i+1:], p) {
			return fmt.Errorf("input '%s' defines the platform '%s' more than once", s.Name, p)
		}
	}
	if len(s.Outputs) == 0 && len(s.Shippers) == 0 {
		return fmt.Errorf("input '%s' must define at least one output or one shipper", s.Name)
	}
	for i, o := range s.Outputs {
		if slices.Contains(s.Outputs[i+1:], o) {
			return fmt.Errorf("input '%s' defines the output '%s' more than once", s.Name, o)
		}
	}
	return nil
}

// LoadSpec reads a component spec as the agent does.
func LoadSpec(data []byte) (*Spec, error) {
	cfg, err := yaml.NewConfig(data)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := cfg.Unpack(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Platforms are the platforms teleportbeat runs on under the agent of
// this host: Linux, or a container (the agent says "container" when it
// runs in one).
func hostPlatforms() []string {
	return []string{"linux/" + runtime.GOARCH, "container/" + runtime.GOARCH}
}

// loadable does what the agent does with a components directory at start
// (LoadRuntimeSpecs): every spec has its binary beside it and loads, and
// no input or alias is declared twice for this host's platform. An error
// here is an agent that does not start.
func loadable(dir string) error {
	specs, err := filepath.Glob(filepath.Join(dir, "*.spec.yml"))
	if err != nil {
		return err
	}
	for _, platform := range hostPlatforms() {
		inputs := map[string]string{} // input or alias -> spec file
		for _, match := range specs {
			bin := strings.TrimSuffix(match, ".spec.yml")
			info, err := os.Stat(bin)
			if errors.Is(err, fs.ErrNotExist) || (err == nil && info.IsDir()) {
				return fmt.Errorf("missing matching binary for %s", match)
			} else if err != nil {
				return fmt.Errorf("failed to stat %s: %w", bin, err)
			}
			data, err := os.ReadFile(match)
			if err != nil {
				return fmt.Errorf("failed reading spec %s: %w", match, err)
			}
			s, err := LoadSpec(data)
			if err != nil {
				return fmt.Errorf("failed reading spec %s: %w", match, err)
			}
			for _, in := range s.Inputs {
				if !slices.Contains(in.Platforms, platform) {
					continue
				}
				for _, name := range append([]string{in.Name}, in.Aliases...) {
					if other, ok := inputs[name]; ok {
						return fmt.Errorf("failed loading spec '%s': input '%s' already exists in spec '%s'", match, name, other)
					}
					inputs[name] = filepath.Base(match)
				}
			}
		}
	}
	return nil
}

// strictExec is the agent's check before it runs a component binary
// (HasStrictExecPermsAndOwnership): executable by its owner, writable by
// nobody else, owned by root or the agent's user (the owner of the
// components directory).
func strictExec(path string, agentUID int) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return errors.New("is a directory")
	}
	if info.Mode()&0o022 != 0 {
		return errors.New("cannot be writeable by group or other")
	}
	if info.Mode()&0o100 == 0 {
		return errors.New("not executable by owner")
	}
	if uid, _ := owner(info); uid != 0 && uid != agentUID {
		return errors.New("file owner does not match expected UID or root")
	}
	return nil
}
