import { describe, expect, it } from 'vitest';
import { csvCell, toCsv } from './csv';
import { usageCsv, USAGE_CSV_HEADER } from '../pages/operator/usageCsv';

describe('csv', () => {
  it('quotes commas, quotes and line breaks', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(1.5)).toBe('1.5');
    expect(csvCell(Number.NaN)).toBe('');
  });

  it('defuses spreadsheet formulas in text', () => {
    expect(csvCell('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell(-5)).toBe('-5');
  });

  it('joins rows with CRLF', () => {
    expect(toCsv(['a', 'b'], [[1, 'x']])).toBe('a,b\r\n1,x\r\n');
  });

  it('writes the platform usage table', () => {
    const csv = usageCsv([
      {
        tenant_id: 't1',
        name: 'Acme, Inc.',
        tier: 'smb',
        status: 'active',
        usage: {
          period: '2026-12',
          queries: 2,
          searches: 1,
          prompt_tokens: 10,
          completion_tokens: 5,
          cost_usd: 0.0125,
          storage_gb: '0.000100',
          api_calls: 12,
          bytes_ingested: 46,
          documents_indexed: 1,
        },
      },
    ]);
    const [header, row] = csv.trim().split('\r\n');
    expect(header).toBe(USAGE_CSV_HEADER.join(','));
    expect(row).toBe('2026-12,t1,"Acme, Inc.",smb,active,2,1,10,5,0.0125,0.000100,12,46,1');
  });
});
