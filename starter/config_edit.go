package starter

import (
	"fmt"
	"os"
	"strings"
)

// EditorCommand is the command `pigwf config edit` runs on file: $VISUAL, else $EDITOR, else vi,
// split into words at white space (so EDITOR="code --wait" works) with the file as the last
// argument. No shell reads it: quotes and $ in the variable are not interpreted, and the file's
// name reaches the editor as one argument whatever it holds.
func EditorCommand(getenv func(string) string, file string) []string {
	for _, v := range []string{"VISUAL", "EDITOR"} {
		if words := strings.Fields(getenv(v)); len(words) > 0 {
			return append(words, file)
		}
	}
	return []string{"vi", file}
}

// EditConfigFile writes the config as RenderConfigYAML shows it to a new private file (mode
// 0600, in the temporary directory), lets edit change it, and reads it back. The file stays for
// the caller to remove: an edit that is refused keeps it, so the work is not lost.
func EditConfigFile(read ConfigRead, edit func(path string) error) (path string, edited []byte, err error) {
	text, err := RenderConfigYAML(read)
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp("", "pigwf-config-"+read.Cluster+"-*.yaml") // CreateTemp makes it 0600
	if err != nil {
		return "", nil, fmt.Errorf("a file to edit %s's config in: %w", read.Cluster, err)
	}
	path = f.Name()
	_, werr := f.Write(text)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return "", nil, fmt.Errorf("write %s: %w", path, werr)
	}
	if err := edit(path); err != nil {
		os.Remove(path)
		return "", nil, fmt.Errorf("the editor on %s: %w; nothing written", path, err)
	}
	edited, err = os.ReadFile(path)
	if err != nil {
		os.Remove(path)
		return "", nil, fmt.Errorf("read the edited %s: %w", path, err)
	}
	return path, edited, nil
}
