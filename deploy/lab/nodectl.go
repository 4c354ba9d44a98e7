package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func (s *Status) node(i int) (*labState, *nodeState, error) {
	st, err := readState(s.Dir)
	if errors.Is(err, errNoState) {
		return nil, nil, fmt.Errorf("lab %s is not up: run `pigwf lab up`", s.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	if i < 1 || i > len(st.Nodes) || i > len(s.Nodes) {
		return nil, nil, fmt.Errorf("lab %s has no node %d (nodes are 1..%d)", s.Name, i, len(st.Nodes))
	}
	return st, &st.Nodes[i-1], nil
}

func (s *Status) KillNode(i int) error {
	_, n, err := s.node(i)
	if err != nil {
		return err
	}
	if err := stopNode(context.Background(), n); err != nil {
		return err
	}
	s.Nodes[i-1].Running = false
	return nil
}

func (s *Status) StartNode(ctx context.Context, i int) error {
	t, err := checkHost()
	if err != nil {
		return err
	}
	unlock, err := lockMachine()
	if err != nil {
		return err
	}
	defer unlock()
	st, n, err := s.node(i)
	if err != nil {
		return err
	}
	if !(procRef{n.PID, n.PIDStart}).alive() {
		l := layout{s.Dir}
		mountErr := ensureMountPoints(st) // another lab's Down may have removed them while this node was dead
		if err := writeState(s.Dir, st); err != nil {
			return err
		}
		if mountErr != nil {
			return mountErr
		}
		if err := ensureBridge(ctx, t, st); err != nil {
			return err
		}
		if err := ensureNodeNetwork(ctx, t, st, *n, false); err != nil {
			return err
		}
		if err := killStrays(ctx, t, l, *n); err != nil {
			return err
		}
		startErr := startNode(ctx, t, l, n)
		if err := writeState(s.Dir, st); err != nil {
			return err
		}
		if startErr != nil {
			return startErr
		}
		if err := waitNodeReady(ctx, l, *n); err != nil {
			return err
		}
		if i <= st.Etcd {
			if err := waitEtcdListening(ctx, l, *n); err != nil {
				return err
			}
		}
	}
	s.Nodes[i-1].PID = n.PID
	s.Nodes[i-1].Running = true
	s.Nodes[i-1].LinkUp = linkIsUp(n.Veth)
	return nil
}

func (s *Status) SetLink(i int, up bool) error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	t, err := findTools()
	if err != nil {
		return err
	}
	_, n, err := s.node(i)
	if err != nil {
		return err
	}
	state := "down"
	if up {
		state = "up"
	}
	if _, err := run(context.Background(), "", t.ip, "link", "set", n.Veth, state); err != nil {
		return fmt.Errorf("while setting the link of node %s %s: %w", n.Name, state, err)
	}
	s.Nodes[i-1].LinkUp = up
	return nil
}

func (s *Status) Exec(ctx context.Context, i int, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("lab: Exec needs a command")
	}
	if os.Geteuid() != 0 {
		return nil, errNotRoot
	}
	t, err := findTools()
	if err != nil {
		return nil, err
	}
	_, n, err := s.node(i)
	if err != nil {
		return nil, err
	}
	if !(procRef{n.PID, n.PIDStart}).alive() {
		return nil, fmt.Errorf("lab: node %s is not running", n.Name)
	}
	cmd := exec.CommandContext(ctx, t.nsenter, append([]string{"-t", strconv.Itoa(n.PID), "-a", "--"}, argv...)...)
	cmd.Dir = "/"
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil
	}
	if err != nil {
		return out, fmt.Errorf("while running %q on node %s: %w", strings.Join(argv, " "), n.Name, err)
	}
	return out, nil
}
