// Times a peer's MiVB SMDR parser over the same bytes as benchmarks/smdr_parse.py (--peer).
//
//   node benchmarks/smdr_peer.mjs BUNDLE INPUT
//
// BUNDLE is an ES module exporting `SMDRParser` (`new SMDRParser().parse(line)` returning
// `{ record, error }`), such as SMDR-Miner's backend/parser/SMDRParser.ts bundled by esbuild
// (docs/sources/mivb-smdr.md says how); INPUT is the byte stream smdr_parse.py wrote (CR LF
// lines). The timed work matches ours, from bytes to records: decode the buffer as Latin-1, cut
// it into lines, parse each. A whole untimed pass runs first, then a fresh parser is timed over
// the same lines: V8 compiles hot functions as it goes, and the 2,000 lines that warm our
// parser leave the peer at half its steady rate on a short stream. Prints one JSON line: CPU and
// wall seconds of the timed pass, records made, lines refused.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [bundle, input] = process.argv.slice(2);
const { SMDRParser } = await import(pathToFileURL(resolve(bundle)).href);
const bytes = readFileSync(input);

function parseAll(buffer) {
  const lines = buffer.toString('latin1').split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parser = new SMDRParser();
  let records = 0;
  let refused = 0;
  for (const line of lines) {
    if (parser.parse(line).record) records += 1;
    else refused += 1;
  }
  return { records, refused };
}

parseAll(bytes); // the steady state: what V8 will optimise, optimised
const cpuBefore = process.cpuUsage();
const wallBefore = process.hrtime.bigint();
const { records, refused } = parseAll(bytes);
const cpu = process.cpuUsage(cpuBefore);
const wall = Number(process.hrtime.bigint() - wallBefore) / 1e9;
console.log(JSON.stringify({ cpu: (cpu.user + cpu.system) / 1e6, wall, records, refused }));
