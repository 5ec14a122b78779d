// The publishing policy of interfaces 5 and 6 (spec section 5): the control port gives a timing
// peer list; among the peers that are qualified and valid the BMC (bmc.ts) picks the master,
// and the master filter (offset/master-seam.ts: classic look-back/acceptance, or tracking) estimates
// its offset. One client: the --shm-name region.

import { formatClockId } from "../ptp/clock-identity.ts";
import { selectMaster, type MasterCandidate } from "./bmc.ts";
import type { Draft } from "./draft.ts";
import { samePublishedMaster, type PublishedMaster } from "./effects.ts";
import type { MasterTracker } from "./offset/master-seam.ts";
import type { MasterSample } from "./offset/master-seam.ts";
import { isCandidate, type ClockRecord } from "./records.ts";
import type { MasterState, SelectionState } from "./state.ts";
import type { OffsetSample } from "./syfu.ts";
import type { RecordUpdate } from "./table.ts";
import { setTimingPeers } from "./table.ts";

export const NO_SELECTION: SelectionState = { master: null };

/** "T ip…": replaces the timing peer list ([] clears it), then runs the BMC. */
export function onTimingPeers(d: Draft, addresses: readonly string[]): void {
  const { maxRecords } = d.config;
  let peers: string[] = [];
  const seen = new Set<string>();
  for (const address of addresses) {
    if (address === "" || seen.has(address)) continue;
    seen.add(address);
    peers.push(address);
  }
  if (peers.length > maxRecords) {
    d.limitedLog(
      "peers-too-many",
      "warn",
      `timing peer list has ${peers.length} addresses; keeping the first ${maxRecords}, ignoring ${peers.slice(maxRecords).join(", ")}`,
    );
    peers = peers.slice(0, maxRecords);
  }
  const changed = peers.length !== d.peers.length || peers.some((ip, i) => ip !== d.peers[i]);
  setTimingPeers(d, peers);
  if (changed) {
    d.limitedLog("peers", "info", peers.length === 0 ? "timing peer list cleared" : `timing peer list: ${peers.join(", ")}`);
  } else {
    d.limitedLog("peers", "debug", "timing peer list unchanged");
  }
  reselectMaster(d);
}

/** A PTP message updated a record: re-run the BMC if a candidate changed; feed the master. */
export function onRecordUpdate(d: Draft, update: RecordUpdate): void {
  const selection = d.selection!;
  const masterBefore = selection.master;
  if (update.candidateChanged) reselectMaster(d);
  // Samples of a master that was master before this event update its estimate; a master chosen
  // just now has looked back over them already.
  const master = d.selection!.master;
  const { record, samples } = update;
  if (samples.length > 0 && master !== null && master === masterBefore && master.ip === record.ip && master.clockId === record.clockIdentity) {
    feedMaster(d, master, update);
  }
}

function trackerOf(d: Draft): MasterTracker {
  return d.config.masterTracker;
}

/** What the region holds for `master`: its estimate, or zeros (null) without a master or an estimate. */
export function publishedRecord(master: MasterState | null): PublishedMaster | null {
  const e = master?.track?.estimate ?? null;
  if (master === null || e === null) return null;
  return {
    clockId: master.clockId,
    ip: master.ip,
    localTimeNs: e.localTimeNs,
    offsetNs: e.offsetNs,
    masterStartTimeNs: e.masterStartTimeNs,
  };
}

/** Publishes `master` to the one region unless it holds exactly that already. */
function publish(d: Draft, master: MasterState | null): void {
  const record = publishedRecord(master);
  const before = publishedRecord(d.selection!.master);
  d.selection = { master };
  if (!samePublishedMaster(before, record)) d.publish(d.config.mainClient, record);
}

/** Runs the BMC over the candidates; on a change of master, starts its estimate and publishes. */
export function reselectMaster(d: Draft): void {
  const candidates: (MasterCandidate & { record: ClockRecord })[] = [];
  for (const record of d.records.values()) {
    if (isCandidate(record)) candidates.push({ id: record.ip, dataSet: record.announce!, record });
  }
  const current = d.selection!.master;
  const best = selectMaster(candidates, current?.ip ?? null);
  if (best === null) {
    if (current === null) return;
    d.limitedLog("master", "info", `no master (was ${formatClockId(current.clockId)} at ${current.ip})`);
    publish(d, null);
    return;
  }
  const clockId = best.record.clockIdentity!;
  if (current !== null && current.ip === best.id && current.clockId === clockId) return;
  const master: MasterState = { ip: best.id, clockId, track: trackerOf(d).begin(withEpoch(best.record.samples, best.record.timelineEpoch)) };
  d.limitedLog("master", "info", `new master ${formatClockId(clockId)} at ${best.id}`);
  publish(d, master);
}

/** The samples as the master filter takes them: with the record's timeline evidence. */
function withEpoch(samples: readonly OffsetSample[], timelineEpoch: number): MasterSample[] {
  return samples.map((sample) => ({ ...sample, timelineEpoch }));
}

function feedMaster(d: Draft, master: MasterState, update: RecordUpdate): void {
  let track = master.track;
  for (const sample of withEpoch(update.samples, update.record.timelineEpoch)) {
    if (track === null) {
      track = trackerOf(d).begin([sample]);
      continue;
    }
    const step = track.next(sample);
    if (step.note !== null) d.limitedLog(step.note.key, step.note.level, step.note.message(formatClockId(master.clockId)));
    track = step.track;
  }
  publish(d, { ...master, track });
}
