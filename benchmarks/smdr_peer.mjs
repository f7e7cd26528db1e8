// Times a peer's MiVB SMDR parser over the same bytes as benchmarks/smdr_parse.py (--peer).
//
//   node benchmarks/smdr_peer.mjs BUNDLE INPUT WARM_UP
//
// BUNDLE is an ES module exporting `SMDRParser` (`new SMDRParser().parse(line)` returning
// `{ record, error }`), such as SMDR-Miner's backend/parser/SMDRParser.ts bundled by esbuild
// (docs/sources.md says how); INPUT is the byte stream smdr_parse.py wrote (CR LF lines). The
// timed work matches ours from bytes to records: decode the buffer as Latin-1, cut it into
// lines, parse each. The first WARM_UP lines run untimed first (a fresh parser is then timed),
// as ours do. Prints one JSON line: CPU and wall seconds, records made, lines refused.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [bundle, input, warmUpText] = process.argv.slice(2);
const { SMDRParser } = await import(pathToFileURL(resolve(bundle)).href);
const bytes = readFileSync(input);
const warmUp = Number(warmUpText);

function parseAll(buffer, limit) {
  const lines = buffer.toString('latin1').split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parser = new SMDRParser();
  let records = 0;
  let refused = 0;
  const count = Math.min(limit, lines.length);
  for (let i = 0; i < count; i += 1) {
    if (parser.parse(lines[i]).record) records += 1;
    else refused += 1;
  }
  return { records, refused };
}

parseAll(bytes, warmUp);
const cpuBefore = process.cpuUsage();
const wallBefore = process.hrtime.bigint();
const { records, refused } = parseAll(bytes, Infinity);
const cpu = process.cpuUsage(cpuBefore);
const wall = Number(process.hrtime.bigint() - wallBefore) / 1e9;
console.log(JSON.stringify({ cpu: (cpu.user + cpu.system) / 1e6, wall, records, refused }));
