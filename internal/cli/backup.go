package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

const hintNoBackup = "check the backup ID; `tokmesh-cli backup list` lists this node's backups"

func (a *app) backupCmd() *cobra.Command {
	return group("backup", "Take, list, download and restore backups",
		`  tokmesh-cli backup snapshot --description "before upgrade"
  tokmesh-cli backup download tmbk-01jh8w… --file /srv/backups/latest.tmbak
  tokmesh-cli backup restore --id tmbk-01jh8w…`,
		a.backupSnapshot(), a.backupList(), a.backupDownload(), a.backupRestore(), a.backupStatus())
}

func (a *app) backupTable(b *client.Backup) func(*tabwriter.Writer, bool) {
	return func(w *tabwriter.Writer, wide bool) {
		pairs := []string{"backup_id", b.BackupID, "description", dash(b.Description), "created_at", ts(b.CreatedAt),
			"created_by", dash(b.CreatedBy), "node_id", b.NodeID, "size", humanBytes(b.SizeBytes),
			"sessions", strconv.FormatInt(b.Sessions, 10), "tombstones", strconv.FormatInt(b.Tombstones, 10),
			"api_keys", strconv.Itoa(b.APIKeys), "sha256", b.SHA256}
		if wide {
			pairs = append(pairs, "size_bytes", strconv.FormatInt(b.SizeBytes, 10), "mode", b.Mode,
				"cluster_id", dash(b.ClusterID), "cipher", dash(b.Cipher), "key_id", dash(b.KeyID))
		}
		a.kv(w, pairs...)
	}
}

func (a *app) backupSnapshot() *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take a backup of the node now",
		Long: `Take a consistent backup of the node's sessions and API key table into its
backups directory (<data_dir>/backups). Download it with "backup download".`,
		Example: `  tokmesh-cli backup snapshot
  tokmesh-cli backup snapshot --description "before upgrade to 1.4" -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			stop := a.spin("Taking a backup…")
			b, err := c.CreateBackup(a.ctx(cmd), desc)
			stop()
			if err != nil {
				return err
			}
			return a.emit(b, a.backupTable(b))
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "free text stored with the backup (up to 256 bytes)")
	return cmd
}

func (a *app) backupList() *cobra.Command {
	var page, size int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the node's backups, newest first",
		Example: "  tokmesh-cli backup list\n  tokmesh-cli backup list -o wide\n  tokmesh-cli backup list -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.ListBackups(a.ctx(cmd), page, size)
			if err != nil {
				return err
			}
			return a.emit(l, func(w *tabwriter.Writer, wide bool) {
				if wide {
					a.header(w, "BACKUP ID", "CREATED", "SIZE", "SESSIONS", "TOMBSTONES", "API KEYS", "CREATED BY", "SHA256", "DESCRIPTION")
				} else {
					a.header(w, "BACKUP ID", "CREATED", "SIZE", "SESSIONS", "DESCRIPTION")
				}
				for _, b := range l.Items {
					if wide {
						row(w, b.BackupID, ts(b.CreatedAt), humanBytes(b.SizeBytes), strconv.FormatInt(b.Sessions, 10),
							strconv.FormatInt(b.Tombstones, 10), strconv.Itoa(b.APIKeys), dash(b.CreatedBy), b.SHA256, dash(b.Description))
					} else {
						row(w, b.BackupID, ts(b.CreatedAt), humanBytes(b.SizeBytes), strconv.FormatInt(b.Sessions, 10), dash(b.Description))
					}
				}
				w.Flush()
				a.footer(w, l.Total)
			})
		},
	}
	cmd.Flags().IntVar(&page, "page", 0, "page number (from 1)")
	cmd.Flags().IntVar(&size, "size", 0, "page size (1..100)")
	return cmd
}

// downloadResult is what `backup download` prints.
type downloadResult struct {
	BackupID    string `json:"backup_id"`
	File        string `json:"file"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
	ResumedFrom int64  `json:"resumed_from"`
	// AlreadyComplete: the file was there with the right checksum; nothing
	// was transferred.
	AlreadyComplete bool `json:"already_complete"`
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (a *app) backupDownload() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "download ID [--file PATH]",
		Short: "Download a backup file, resuming an interrupted download",
		Long: `Download a backup file to PATH (default ./<ID>.tmbak; a directory gets <ID>.tmbak
inside it). The data goes to PATH.part first; when that file exists from an
interrupted run, the download resumes where it stopped (HTTP Range). The SHA-256 is
checked against the backup object before the file is renamed to PATH. A progress
bar shows on a terminal.`,
		Example: `  tokmesh-cli backup download tmbk-01jh8w…
  tokmesh-cli -t prod backup download tmbk-01jh8w… --file /srv/backups/prod.tmbak -o json`,
		Args: exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := a.ctx(cmd)
			c, err := a.client()
			if err != nil {
				return err
			}
			info, err := c.GetBackup(ctx, args[0])
			if err != nil {
				return withHint(err, "TM-ADMIN-4041", hintNoBackup)
			}
			if file == "" {
				file = info.BackupID + ".tmbak"
			} else if fi, err := os.Stat(file); err == nil && fi.IsDir() {
				file = filepath.Join(file, info.BackupID+".tmbak")
			}
			res := &downloadResult{BackupID: info.BackupID, File: file, SizeBytes: info.SizeBytes, SHA256: info.SHA256}
			if fi, err := os.Stat(file); err == nil {
				if sum, err := fileSHA256(file); err == nil && fi.Size() == info.SizeBytes && sum == info.SHA256 {
					res.AlreadyComplete = true
					a.notice("%s is already complete (SHA-256 matches); nothing to download", file)
					return a.emit(res, a.downloadTable(res))
				}
				return dataErr("%s exists and is not this backup; remove it or choose another --file", file)
			}
			if err := a.download(ctx, c, info, file, res); err != nil {
				return err
			}
			a.notice("Saved %s (%s, SHA-256 verified)", file, humanBytes(info.SizeBytes))
			return a.emit(res, a.downloadTable(res))
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "where to save it: a file, or a directory (default ./<ID>.tmbak)")
	return cmd
}

func (a *app) downloadTable(res *downloadResult) func(*tabwriter.Writer, bool) {
	return func(w *tabwriter.Writer, _ bool) {
		a.kv(w, "backup_id", res.BackupID, "file", res.File, "size", humanBytes(res.SizeBytes), "sha256", res.SHA256,
			"resumed_from", strconv.FormatInt(res.ResumedFrom, 10), "already_complete", strconv.FormatBool(res.AlreadyComplete))
	}
}

// download fetches the backup into file+".part" (resuming it), verifies
// the checksum and renames it to file.
func (a *app) download(ctx context.Context, c *client.Client, info *client.Backup, file string, res *downloadResult) error {
	part := file + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return dataErr("cannot write %s: %v", part, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return dataErr("cannot write %s: %v", part, err)
	}
	offset := fi.Size()
	if offset > info.SizeBytes {
		offset = 0 // not a prefix of this backup
	}
	if offset == info.SizeBytes && offset > 0 {
		offset = 0 // complete but unverified: start over rather than trust it (checked below)
		if sum, err := fileSHA256(part); err == nil && sum == info.SHA256 {
			offset = info.SizeBytes
		}
	}
	if offset < info.SizeBytes {
		bf, err := c.OpenBackupFile(ctx, info.BackupID, offset, `"`+info.SHA256+`"`)
		if err != nil {
			return err
		}
		defer bf.Body.Close()
		offset = bf.Offset // 0 when the server sent the whole file
		if offset > 0 {
			a.notice("Resuming %s at %s", part, humanBytes(offset))
		}
		res.ResumedFrom = offset
		if err := f.Truncate(offset); err != nil {
			return dataErr("cannot write %s: %v", part, err)
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return dataErr("cannot write %s: %v", part, err)
		}
		pr := a.newProgress("Downloading", info.SizeBytes, true)
		pr.resumeFrom(offset)
		_, err = io.Copy(f, &countingReader{r: bf.Body, pr: pr})
		pr.done()
		if err != nil {
			if ctx.Err() != nil {
				a.notice("Interrupted; run the same command again to resume from %s", part)
				return ctx.Err()
			}
			var we *os.PathError
			if errors.As(err, &we) {
				return dataErr("cannot write %s: %v", part, err)
			}
			return &cliError{exit: ExitUnavailable, code: CodeConnect, msg: fmt.Sprintf("download from %s broke off: %v", c.Target(), err),
				hint: "run the same command again to resume from " + part}
		}
	}
	if err := f.Sync(); err != nil {
		return dataErr("cannot write %s: %v", part, err)
	}
	if err := f.Close(); err != nil {
		return dataErr("cannot write %s: %v", part, err)
	}
	sum, err := fileSHA256(part)
	if err != nil {
		return dataErr("cannot read back %s: %v", part, err)
	}
	if sum != info.SHA256 {
		os.Remove(part)
		return dataErr("checksum mismatch: got %s, want %s; the partial file was removed, run again", sum, info.SHA256)
	}
	if err := os.Rename(part, file); err != nil {
		return dataErr("cannot rename %s to %s: %v", part, file, err)
	}
	return nil
}

func (a *app) jobTable(j *client.RestoreJob) func(*tabwriter.Writer, bool) {
	return func(w *tabwriter.Writer, _ bool) {
		a.kv(w, "job_id", j.JobID, "status", j.Status, "progress", strconv.Itoa(j.Progress)+"%", "message", dash(j.Message),
			"backup_id", dash(j.BackupID), "pre_restore_backup_id", dash(j.PreRestoreBackupID),
			"started_at", ts(j.StartedAt), "finished_at", ts(j.FinishedAt),
			"restored_sessions", strconv.Itoa(j.RestoredSessions), "added_api_keys", strconv.Itoa(j.AddedAPIKeys))
	}
}

// restorePoll is the first wait between restore job polls; it doubles up
// to restorePollMax.
var (
	restorePoll    = 100 * time.Millisecond
	restorePollMax = time.Second
)

// waitRestore polls the job until it ends, with a progress bar.
func (a *app) waitRestore(ctx context.Context, c *client.Client, job *client.RestoreJob) (*client.RestoreJob, error) {
	pr := a.newProgress("Restoring  ", 100, false)
	defer pr.done()
	wait := restorePoll
	for !job.Done() {
		pr.set(int64(job.Progress))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			pr.done()
			a.notice("The restore goes on on the server; follow it with `tokmesh-cli backup status %s`", job.JobID)
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, restorePollMax)
		j, err := c.RestoreJob(ctx, job.JobID)
		if err != nil {
			return nil, err
		}
		job = j
	}
	pr.set(int64(job.Progress))
	return job, nil
}

func (a *app) backupRestore() *cobra.Command {
	var (
		id, file      string
		force, noWait bool
	)
	cmd := &cobra.Command{
		Use:   "restore (--id ID | --file PATH)",
		Short: "Replace the node's sessions with a backup's (dangerous)",
		Long: `Restore a backup held by the node (--id) or upload a backup file (--file). The node
takes a pre-restore backup, then replaces its live sessions with the backup's and adds
the backup's API keys that do not exist. Business requests are refused while it runs.
The command waits for the job to end and shows its progress; --no-wait returns once
it started. Exit 1 when the job fails.`,
		Example: `  tokmesh-cli backup restore --id tmbk-01jh8w…
  tokmesh-cli -t prod backup restore --file ./prod.tmbak --force --no-wait -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (id == "") == (file == "") {
				return usageErr("give exactly one of --id or --file")
			}
			var (
				f    *os.File
				size int64
			)
			if file != "" {
				var err error
				if f, err = os.Open(file); err != nil {
					return dataErr("cannot read backup file: %v", err)
				}
				defer f.Close()
				fi, err := f.Stat()
				if err != nil || !fi.Mode().IsRegular() {
					return dataErr("cannot read backup file %s: not a regular file", file)
				}
				size = fi.Size()
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			what := "backup " + id
			if file != "" {
				what = "the backup file " + file
			}
			if err := a.confirm(force, fmt.Sprintf("Restore %s on %s? Its live sessions are replaced by the backup's.", what, c.Target()), ""); err != nil {
				return err
			}
			ctx := a.ctx(cmd)
			var job *client.RestoreJob
			if id != "" {
				stop := a.spin("Starting the restore…")
				job, err = c.StartRestore(ctx, id)
				stop()
				err = withHint(err, "TM-ADMIN-4041", hintNoBackup)
			} else {
				pr := a.newProgress("Uploading  ", size, true)
				job, err = c.RestoreUpload(ctx, filepath.Base(file), &countingReader{r: f, pr: pr})
				pr.done()
			}
			if err != nil {
				return err
			}
			if noWait {
				a.notice("Restore job %s started; follow it with `tokmesh-cli backup status %s`", job.JobID, job.JobID)
				return a.emit(job, a.jobTable(job))
			}
			if job, err = a.waitRestore(ctx, c, job); err != nil {
				return err
			}
			if err := a.emit(job, a.jobTable(job)); err != nil {
				return err
			}
			if job.Status != "succeeded" {
				return &cliError{exit: ExitFailure, code: "TM-ADMIN-5001", msg: "restore job " + job.JobID + " failed: " + job.Message,
					hint: "the node kept or went back to its data from before the restore; see its log"}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "ID of a backup held by the node (see: tokmesh-cli backup list)")
	f.StringVar(&file, "file", "", "backup file to upload (.tmbak)")
	f.BoolVar(&force, "force", false, "do not ask for confirmation")
	f.BoolVar(&noWait, "no-wait", false, "return once the job started")
	return cmd
}

func (a *app) backupStatus() *cobra.Command {
	return &cobra.Command{
		Use:     "status [JOB_ID]",
		Short:   "Show a restore job (default: the latest)",
		Example: "  tokmesh-cli backup status\n  tokmesh-cli backup status tmrj-01jh8w… -o json",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr("expected at most 1 argument (JOB_ID), got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id := "latest"
			if len(args) == 1 {
				id = args[0]
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			j, err := c.RestoreJob(a.ctx(cmd), id)
			if err != nil {
				return withHint(err, "TM-ADMIN-4041", "no such restore job; without JOB_ID this shows the latest one, and none has run on this node")
			}
			return a.emit(j, a.jobTable(j))
		},
	}
}
