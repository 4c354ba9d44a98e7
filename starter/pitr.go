package starter

import (
	"fmt"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
	"github.com/pigwf/pigwf/workflows"
)

// PITRRequest is a point-in-time restore as asked for on the command line.
type PITRRequest struct {
	Flags     pitr.Flags
	BackupSet string
	Inspect   bool
	Cleanup   bool // no restore: delete what earlier runs kept aside
	DryRun    bool
	Reason    string
	Timeout   time.Duration // the approval timeout; 0: the inventory's or the default
}

// PITRRestoreInput resolves a PITRRestore from the inventory. The target is checked here
// (pitr.Parse: every problem with the flag that names it) before anything is started; whether it
// lies in a recoverable window is the run's precheck, which reads the repository.
func PITRRestoreInput(inv *inventory.Inventory, cluster *inventory.Cluster, r PITRRequest, requester string) (workflows.PITRRestoreInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PITRRestoreInput{}, err
	}
	var target pitr.Target
	if r.Cleanup {
		if r.Flags != (pitr.Flags{}) || r.BackupSet != "" || r.Inspect {
			return workflows.PITRRestoreInput{}, fmt.Errorf("--cleanup deletes what earlier restores kept and restores nothing: give it alone, without a target, --backup-set or --inspect")
		}
	} else {
		t, err := pitr.Parse(r.Flags)
		if err != nil {
			return workflows.PITRRestoreInput{}, err
		}
		target = t
	}
	if r.BackupSet != "" {
		if _, err := pitr.ParseBackupLabel(r.BackupSet); err != nil {
			return workflows.PITRRestoreInput{}, err
		}
	}
	if len(inv.Etcd) == 0 {
		return workflows.PITRRestoreInput{}, fmt.Errorf("%s has no etcd group: the HA agents' DCS is needed to pause and resume the cluster", inv.File)
	}
	pg := cluster.PG
	in := workflows.PITRRestoreInput{
		Cluster: cluster.Name, Target: target, BackupSet: r.BackupSet, Inspect: r.Inspect, Cleanup: r.Cleanup, DryRun: r.DryRun,
		Reason: r.Reason, RequestedBy: requester,
		DCS:      dcsOf(inv, cluster),
		Spec:     activities.PITRSpec{Cluster: cluster.Name, DataDir: pg.DataDir, BinDir: pg.BinDir, Port: pg.Port, RepoPath: pg.BackupRepoPath},
		Approval: approvalPolicy(cluster, r.Timeout),
	}
	for _, h := range cluster.Hosts {
		in.Members = append(in.Members, activities.PITRMember{Name: h.Node.Nodename, Node: NodeOf(h), APIURL: activities.AgentAPIURL(h.Node.SSHHost, AgentAPIPort, inv.Plaintext)})
	}
	return in, nil
}

// PITRRestoreMeta: "pitr-restore pg-test: to --target-time 2026-11-30 ..., requested by alice".
func PITRRestoreMeta(in workflows.PITRRestoreInput, req Request) RunMeta {
	var d details
	d.header(workflows.PITRRestoreRunbook, in.Cluster, req)
	if in.Cleanup {
		d.plan("List, on every member, the data directories earlier restores kept aside ("+in.Spec.DataDir+".before-pitr-*, .pitr-failed-*, .pitr-partial-*), changing nothing.",
			upperFirst(approvalStep(in.Approval))+", of that exact list.",
			"Delete those directories, and nothing else.")
		d.approve(workflows.PITRRestoreRunbook, in.Cluster)
		return RunMeta{Summary: summaryLine(workflows.PITRRestoreRunbook, in.Cluster, "delete the data directories earlier restores kept", req), Details: d.String()}
	}
	d.fact("Target", "`"+in.Target.String()+"`")
	d.fact("Backup set", in.BackupSet)
	d.fact("Reason", in.Reason)
	steps := []string{
		"Precheck, changing nothing: etcd and every agent answer; the cluster is not paused; the target lies in a recoverable window after the stop of the backup used (`pigwf backup list`); room on every node beside its kept data directory. The plan names the backup set, the restoring node, the new timeline id and what is discarded.",
	}
	if in.DryRun {
		steps = append(steps, "Dry run: print the plan and stop.")
	} else {
		steps = append(steps,
			upperFirst(approvalStep(in.Approval))+".",
			"Pause HA (the agents change nothing); stop the leader, then the others; keep every data directory aside (nothing is deleted).",
			"pgbackrest restore of the chosen backup on the leader's node, recovery action pause; start it with restore_command and recovery.signal.",
			"Prove the target from PostgreSQL's log (the recovery-stopping line) and pg_last_xact_replay_timestamp(); a target no WAL reaches fails fast.",
		)
		if in.Inspect {
			steps = append(steps, "Inspect: a second approval at the target, showing the last replayed commit, before anything is promoted.")
		}
		steps = append(steps,
			"Until here any failure, rejection or timeout puts the original data directories back and resumes HA.",
			"Promote; archive the new timeline's history file; remove the recovery settings; hand the leader key to the restored member; resume HA; the agents re-create the other members from it.",
			"A new full backup on the new timeline; pgbackrest check; verify every member streams.",
		)
	}
	d.plan(steps...)
	if !in.DryRun {
		d.approve(workflows.PITRRestoreRunbook, in.Cluster)
	}
	return RunMeta{Summary: summaryLine(workflows.PITRRestoreRunbook, in.Cluster, "to "+in.Target.String(), req), Details: d.String()}
}
