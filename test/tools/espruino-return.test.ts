// fixBareReturns, the build step after terser that puts back the semicolon Espruino needs after a bare return.
import { describe, expect, it } from 'vitest';
import { fixBareReturns } from '../../tools/espruino-return.js';
import { checkSource } from '../../tools/espruino-check/checker.js';

describe('fixBareReturns (build step after terser)', () => {
  it('adds the semicolon Espruino 2v29 needs after a bare return in if/else/for before "}"', () => {
    expect(fixBareReturns('function a(){if(1)return}')).toBe('function a(){if(1)return;}');
    expect(fixBareReturns('function a(){for(;;)if(x)return}')).toBe('function a(){for(;;)if(x)return;}');
    expect(fixBareReturns('function a(){if(x)return;else return}')).toBe('function a(){if(x)return;else return;}');
    expect(fixBareReturns('function a(){if(1)return\n}')).toBe('function a(){if(1)return;\n}');
  });

  it('leaves everything else byte for byte, strings included', () => {
    for (const code of ['function a(){if(1)return;}', 'function a(){return}', 'var s="if(1)return}";function a(){if(x)return 1}', 'function a(){while(0)return}']) {
      expect(fixBareReturns(code)).toBe(code);
    }
  });

  it('its output passes the checker, its input does not', () => {
    const code = 'function a(x){for(var i=0;i<x;)if(i++,i>3)return}a(5);';
    expect(checkSource(code, 'in.js').map((f) => f.construct)).toEqual(['bare-return']);
    expect(checkSource(fixBareReturns(code), 'out.js')).toEqual([]);
  });
});
