"""memcorpus repair OUT: restore missing manifest parts, retire damaged samples, requeue their inputs."""

from __future__ import annotations

import argparse
import json

HELP = "repair a dataset folder: restore missing manifest parts, requeue inputs whose samples are missing or corrupt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="dataset folder")
    p.add_argument("--quick", action="store_true", help="find damage by sizes and tar headers only (no checksums)")
    p.add_argument("--dry-run", action="store_true", help="report what would be restored and requeued; change nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from pipelines.dataset import INDEX, DatasetFolder
    from pipelines.lock import DatasetLock
    from pipelines.repair import repair
    from pipelines.storage import Storage

    store = Storage(args.out)
    if not store.is_file(INDEX):
        print(f"{store.path(INDEX)}: missing; repair needs the index (nothing changed)")
        return 2
    corpus = json.loads(store.read_bytes(INDEX)).get("corpus", "")
    folder = DatasetFolder(args.out, corpus)
    with DatasetLock(folder.store, "repair") as lock:  # a build must not commit while we retire its samples
        folder.lock = lock
        rep = repair(folder, level="quick" if args.quick else "full", dry_run=args.dry_run)
        requeue = dict(folder.index().get("requeue") or {})
    result = {"migrated": rep.migrated, "published": rep.published,
              "restored": rep.restored, "damaged_shards": [d.__dict__ for d in rep.damage],
              "requeued": len(rep.requeued), "queued_for_rebuild": len(requeue), "dry_run": args.dry_run}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        if rep.migrated:
            print("moved the manifest to manifest/inputs, manifest/samples, manifest/rejects (format memcorpus/2)")
        for rel in rep.published:
            print(f"renamed committed manifest part {rel} from its pending name")
        for rel in rep.restored:
            print(f"restored manifest part {rel}")
        for d in rep.damage:
            print(f"{'would retire' if args.dry_run else 'retired'} {len(d.keys)} sample(s) of {d.shard}: {d.why}")
        print(f"{len(requeue)} input(s) queued for rebuild: rerun the corpus build on {args.out} to rebuild them"
              if requeue else "nothing to rebuild")
    return 0
