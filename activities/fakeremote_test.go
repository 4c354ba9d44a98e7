package activities

import (
	"context"
	"sync"

	"github.com/pigwf/pigwf/activities/sshrun"
)

// fakeRemote records the commands activities send and answers each from reply (nil: exit 0,
// no output); fail, when set and not nil for a command, is the runner's own error instead (a
// dropped connection).
type fakeRemote struct {
	mu    sync.Mutex
	cmds  []sshrun.Command
	reply func(n int, cmd sshrun.Command) sshrun.Result
	fail  func(n int, cmd sshrun.Command) error
}

func (f *fakeRemote) Run(_ context.Context, _ sshrun.Target, cmd sshrun.Command) (sshrun.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	if f.fail != nil {
		if err := f.fail(len(f.cmds)-1, cmd); err != nil {
			return sshrun.Result{}, err
		}
	}
	if f.reply == nil {
		return sshrun.Result{}, nil
	}
	return f.reply(len(f.cmds)-1, cmd), nil
}

func (f *fakeRemote) commands() []sshrun.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sshrun.Command(nil), f.cmds...)
}
