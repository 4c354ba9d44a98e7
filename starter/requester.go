package starter

import (
	"fmt"
	"os"
	"os/user"
)

// Requester is who ran this command, as a run records it (its requester, the maintenance-mode
// record): the person behind sudo first (SUDO_USER), then the login (USER, LOGNAME), then the
// account the process runs as. It is never empty or "unknown": without a name it is the uid.
func Requester() string {
	for _, env := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := os.Getenv(env); u != "" {
			return u
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
